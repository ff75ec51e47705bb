"""Everything of musicrec that imports Airflow: the DAG's tasks, the metadata validation operator and the
in-process runner behind `musicrec run`. The rest of the library never imports Airflow.

Nothing here imports the heavy analysis libraries at module level: the DAG processor imports these
modules every time it parses the DAG file.
"""
