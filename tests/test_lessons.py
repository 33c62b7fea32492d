"""The lesson notebooks are stored clean (CI runs them with nbmake: pytest --nbmake docs/lessons)."""

import json
from pathlib import Path

import pytest

LESSONS = sorted((Path(__file__).resolve().parents[1] / "docs" / "lessons").glob("*.ipynb"))


@pytest.mark.unit
def test_there_are_the_five_lessons():
    names = [p.stem for p in LESSONS]
    assert names == ["01-first-comparison", "02-is-a-better-than-b", "03-your-own-network", "04-look-inside",
                     "05-change-one-thing"]


@pytest.mark.unit
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_a_lesson_is_stored_without_outputs_and_says_what_to_install(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code), \
        f"{path.name}: clear its outputs (jupyter nbconvert --clear-output --inplace {path.name})"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    first = "".join(notebook["cells"][0]["source"])
    assert "Colab" in first and "pip install" in first  # the first cell says what to install
    assert "import zoo" in "".join("".join(c["source"]) for c in code)
