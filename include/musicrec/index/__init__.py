"""From feature vectors to neighbours.

embedding   the scaler, a PCA per feature group, the weighted embedding
encode      metadata columns as numbers (optional weight in the embedding)
neighbours  each track's nearest neighbours (exact, or approximate above a size), mutual proximity
ann         the approximate index (faiss HNSW)
evaluation  precision against folders, genres and artists; hubness
plots       the evaluation's figures
"""
