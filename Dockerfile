# The image every Airflow container of docker-compose.yaml runs: Airflow's official image with this project's
# runtime requirements installed at build time (not at every start). Decoding needs no system package:
# the PyAV wheel carries ffmpeg's libraries.
FROM apache/airflow:3.3.0-python3.11

# The runtime lock (tests and benchmarks have their own, requirements-dev.txt); apache-airflow is pinned to
# the image's own version.
COPY --chown=airflow:root requirements.txt /opt/musicrec/requirements.txt
RUN pip install --no-cache-dir -r /opt/musicrec/requirements.txt

COPY --chown=airflow:root pyproject.toml /opt/musicrec/pyproject.toml
COPY --chown=airflow:root include /opt/musicrec/include
RUN pip install --no-cache-dir --no-deps /opt/musicrec \
    && python -m compileall -q "$(python -c 'import musicrec, os; print(os.path.dirname(musicrec.__file__))')"

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
