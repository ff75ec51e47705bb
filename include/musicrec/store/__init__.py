"""Where files live and how they are written.

locations  a library or data dir given as a path or an `s3://conn_id@bucket/...` URL
objects    object storage through Airflow's ObjectStoragePath (imports Airflow, on first use)
storage    reads and atomic writes, the run folders and the `current`/`previous` pointers
lock       one run at a time in a data dir
"""
