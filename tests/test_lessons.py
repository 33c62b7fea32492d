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
def test_a_lesson_is_stored_executed_and_ends_checking_its_claims(path):
    """Stored with outputs (a teacher reads them first), with no error and no TensorFlow log among
    them, and a last cell that asserts the claims the text makes (nbmake runs it in CI)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] is not None for c in code), \
        f"{path.name}: store it executed (CONTRIBUTING.md, 'The lesson notebooks')"
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), f"{path.name}: run top to bottom"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"], f"{path.name}: a stored error"
    logs = "".join("".join(o.get("text", "")) for o in outputs if o.get("name") == "stderr")
    for noise in ("oneDNN", "cpu_feature_guard", "absl::InitializeLog", "retracing"):
        assert noise not in logs, f"{path.name}: TensorFlow's log in the outputs: {noise}"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    first = "".join(notebook["cells"][0]["source"])
    assert "pip install" in first and "git+<" not in first  # what to install, and no placeholder
    assert "import zoo" in "".join(code[0]["source"])
    last = code[-1]
    assert "lesson-check" in last["metadata"].get("tags", []) and "assert" in "".join(last["source"])
