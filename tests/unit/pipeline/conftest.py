"""The pipeline tests' library: two folders of three tones, and a metadata file naming one of them."""

import pytest
import soundfile as sf

from support.audio import tone


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "library"
    for folder, base in (("a", 220.0), ("b", 330.0)):
        (root / folder).mkdir(parents=True)
        for i in range(3):
            sf.write(root / folder / f"{i}.wav", tone(base * (i + 1), seconds=0.5), 22050)
    (root / "metadata.csv").write_text("folder,file,artist\na,0.wav,Someone\n")
    return root
