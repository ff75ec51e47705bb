"""The DAG's stages as plain functions over files, without Airflow.

stages   discover, extract, clean_metadata, join, scale, reduce, build_index, evaluate, publish
reuse    what a stage reuses from the last index, and the keys that decide it
"""
