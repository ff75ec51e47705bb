"""What the tests share, beside the fixtures of conftest.py.

project        the checkout's folders (PROJECT_DIR, DATA_DIR: tests/data)
audio          generated audio: tones with numpy, any format with ffmpeg's generator
runs           a run of every stage without Airflow, a small library of two folders
airflow_stack  Airflow's real components on loopback (api-server, scheduler, dag-processor, workers)
object_store   SeaweedFS on loopback, as S3, and its Airflow connection
worker_hostname  each Celery worker's own hostname (they share one machine)
"""
