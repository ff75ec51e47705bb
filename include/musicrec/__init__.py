"""musicrec: content-based music recommendation, as a library under an Airflow DAG.

The layers, each a sub-package, each importing only those before it:

    store      where files live (local disk or object storage), atomic writes, the run folders, the lock
    analysis   decoding and the audio features (librosa-style statistics, the musicnn network), the pool
    library    the music library: discovering files, tags, cleaning and validating metadata
    index      the embedding (scaler, PCA), neighbours (exact, HNSW, mutual proximity), evaluation, plots
    pipeline   the DAG's stages as plain functions, what they reuse, the run summary and publishing
    serve      answering queries over a published index: recommend, similar, playlists, export, schemas
    airflow    everything that imports Airflow: tasks, the validation operator, the runner, the page's app

Beside them: `settings` (defaults and the run parameters), `errors` (what a person is told), `progress`,
`cli` (the `musicrec` command) and `demo` (the generated demo library).
"""
