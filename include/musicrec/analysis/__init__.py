"""From an audio file to its feature vector.

audio        decoding any format, rate and channel count to mono at the analysis rate, with limits
filterbanks  the mel filterbanks both analyses use
features     the librosa-style statistics, FEATURE_VERSION, and the row for one file
musicnn      the musicnn network's embedding through ONNX Runtime (the network is in network/)
extract      a shard's files through a supervised process pool; quarantine of what fails
cores        the machine's cores shared by the shards of one installation
limits       per-file bounds on time and memory
warm         a fork server's warm start (imports done once)
"""
