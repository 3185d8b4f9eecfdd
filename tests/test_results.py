"""The results records: every page's claims as written by ``lcmae_core.claims`` and read back by the summary."""

import json

from lcmae_core import claims, results
from lcmae_core.verdicts import Arm, Precondition


def _claims():
    met = Precondition(True, "pretraining helps: yes")
    return [claims.t1_a_beats_b(Arm("(a)", {"ft": [70.0, 71.0, 69.5]}), Arm("(b)", {"ft": [60.0, 61.5, 59.0]}), met),
            claims.t1_c_collapses([0.04, 0.05, 0.06], [0.5, 0.45, 0.55])]


def test_record_writes_every_field_of_every_claim_and_load_all_reads_them(tmp_path):
    folder = results.record("table1_lcmae_ablation", "cpu", {"x": 1.0}, _claims(), run_root=str(tmp_path))
    written = json.loads((folder / "claims.json").read_text())
    assert [c["id"] for c in written["claims"]] == ["T1-a-vs-b", "T1-c-collapse"]
    for c in written["claims"]:
        assert set(c) == set(results.CLAIM_KEYS) and c["verdict"] == results.HOLDS
    loaded = results.load_all("cpu", str(tmp_path))
    rows = results.claims_rows(loaded)
    assert rows[0]["precondition"] == "pretraining helps: yes" and "[" in rows[0]["evidence"]
    assert "random init" in rows[1]["null controls"]


def test_claims_table_shows_verdict_reason_evidence_precondition_and_controls():
    cs = _claims()
    t = results.claims_table(cs)
    assert list(t.columns) == ["verdict", "why", "evidence", "precondition", "null controls"]
    assert list(t.index) == ["T1-a-vs-b", "T1-c-collapse"]
    # the reader's view: every claim in the paper's words and every field in full, nothing cut short
    md = t._repr_markdown_()
    for c in cs:
        assert f"> {c.text}" in md and f"**{c.id}**: *{c.verdict}*" in md
        for key in ("why", "evidence", "reading", "controls"):
            value = getattr(c, key).replace("*", "\\*").replace("_", "\\_")
            assert not value or value in md
    assert "..." not in md.replace(cs[0].text, "").replace(cs[1].text, "")
