"""Your own question/answer files: `data.forget_file` and `data.retain_file`, each JSON, JSON lines
or Parquet with `question` and `answer` (pareto.data.custom; perturbed and paraphrased answers
enable TOFU's probability metrics)."""

from __future__ import annotations

from pathlib import Path

from pareto.sources._base import PROMPT_KEYS, QA_METRICS, DataBundle, DataSource, SourceCheck, register_source


@register_source("custom")
class Custom(DataSource):
    eval_splits = ()
    keys = ("forget_file", "retain_file") + PROMPT_KEYS
    metric_data, metrics = ("qa",), QA_METRICS
    family, planes = "custom", (("loss_f_eval", "loss_r_eval"), ("rouge_f", "utility_r"))
    summary = "your own forget/retain question-answer files (JSON, JSONL or Parquet)"
    #: The rows the files hold (pareto.data.custom.load_custom's kind) and what one is, in messages.
    kind, record = "qa", "question/answer record"

    def check(self, data: dict, add) -> None:
        for key in ("forget_file", "retain_file"):
            value = data.get(key)
            if not value:
                add(("data", key), f"data.source custom needs data.{key} (a JSON, JSONL or Parquet file)")
            elif not Path(value).is_file():
                add(("data", key), f"no such file: {value}")

    def preflight(self, data: dict, out: SourceCheck) -> dict:
        """Both files readable, with the fields their rows need; the forget set not empty; how much
        of it the retain set repeats (a warning)."""
        from pareto.data.check import overlap_warning
        from pareto.data.custom import load_custom

        rows = {}
        for key in ("forget_file", "retain_file"):
            path = data.get(key)
            if not path or not Path(path).expanduser().is_file():
                continue  # the spec's own check names a missing file
            try:
                rows[key] = load_custom(path, kind=self.kind)
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                msg = str(exc)
                if "has no records" in msg and key == "forget_file":
                    msg = (f"the forget set is empty: {path} has no records. Put at least one "
                           f"{self.record} in it (JSON array, JSON lines or Parquet)")
                out.problems.append((("data", key), msg))
        if len(rows) == 2:
            w = overlap_warning(rows["forget_file"], rows["retain_file"], str(data["forget_file"]),
                                str(data["retain_file"]))
            if w:
                out.warnings.append(f"data: {w}")
        return rows

    def load(self, data: dict) -> DataBundle:
        from pareto.data.custom import load_custom

        forget = load_custom(data["forget_file"], kind=self.kind)
        retain = load_custom(data["retain_file"], kind=self.kind)
        return DataBundle(f"{self.name}:{data['forget_file']}", forget, retain)
