"""A run's signature: every setting that can change its results, so a resumed run with other
settings is refused instead of silently merged into the old rows.

Derived from every setting (by its flat name, `Settings.as_dict`), not listed by hand: a setting
is in unless it cannot change results (where files live, how the UI is served, secrets, retry and
timeout policy, quiz modes), and the answering and judging fields only count when the run answers. Keys are the
settings' own names (the names old run folders used); a key one signature lacks (a setting
added since) counts as its default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Settings
from ..masking import mask_url

# cannot change a run's results: paths (the index's content is what is searched), the web UI,
# secrets, how long or how often to retry, the llama.cpp CPU probe, and the quiz modes
NOT_RESULTS = frozenset({
    "corpus_dir", "index_dir", "home", "data_dir", "feedback_path", "judge_labels", "host", "port", "auth", "api_key",
    "timeout_s", "retries", "llama_probe", "quiz_llm_phrasing", "quiz_llm_grader",
})
# only change results when the run answers (retrieval-only runs load no model and no judge)
ANSWER_ONLY = frozenset({
    "backend", "model", "base_url", "max_tokens", "temperature", "top_p", "n_ctx", "n_threads", "flash_attn",
    "relevance_threshold", "answer_k", "evidence_tokens", "evidence_units", "evidence_dense_weight",
    "evidence_dense_units", "min_coverage", "min_evidence_score",
    "judge", "judge_mode", "judge_threshold", "judge_backend", "judge_model", "judge_base_url",
})
# server addresses count (masked) only when that model is reached through one
_SERVED_BY = {"base_url": "backend", "judge_base_url": "judge_backend"}


def settings_signature(s: Settings, answers: bool) -> dict[str, Any]:
    """The result-changing settings of `s`, by name (JSON values)."""
    flat = s.as_dict()
    sig: dict[str, Any] = {}
    for name, value in flat.items():
        if name in NOT_RESULTS or (name in ANSWER_ONLY and not answers):
            continue
        if name in _SERVED_BY:
            value = mask_url(value) if flat[_SERVED_BY[name]] == "openai" else None
        sig[name] = value
    return sig


def run_signature(s: Settings, dataset: Path | str, retrieval_only: bool, judge: str,
                  pipeline: dict | None = None) -> dict[str, Any]:
    """The signature a run folder records in run.json and report.json. `pipeline`: another
    pipeline's own settings (a baseline), which stand instead of the tutor's."""
    head = {"dataset": str(dataset), "retrieval_only": retrieval_only}
    if pipeline is not None:
        return {**head, **pipeline, **({"judge": judge} if not retrieval_only else {})}
    sig = {**head, **settings_signature(s, answers=not retrieval_only)}
    if not retrieval_only:
        sig["judge"] = judge  # the judge the run was asked for (a flag may override the setting)
    return sig


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys whose values differ, a key missing on one side counting as the setting's default
    (so a signature written before a setting existed still matches a run at its default)."""
    defaults = settings_signature(Settings(), answers=True)
    return sorted(k for k in set(old) | set(new) if old.get(k, defaults.get(k)) != new.get(k, defaults.get(k)))
