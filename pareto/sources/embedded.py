"""The embedded default: deterministic synthetic fictitious authors in TOFU's schema
(pareto.data.synthetic), built together with the tiny target trained on them
(pareto.models.embedded), so the main job runs offline in minutes. Its settings are the target's
(`target.embedded`, an EmbeddedConfig), not the data section's."""

from __future__ import annotations

from pareto.sources._base import QA_METRICS, DataSource, register_source


@register_source("embedded")
class Embedded(DataSource):
    keys = ()  # the prompt is fixed: the embedded target is trained with the plain template and BOS
    metric_data, metrics = ("qa",), QA_METRICS
    family, planes = "tofu", (("loss_f_eval", "loss_r_eval"), ("rouge_f", "utility_r"))
    target = "embedded"
    summary = "synthetic fictitious authors in TOFU's schema, built with the tiny embedded target (offline)"

    def check(self, data: dict, add) -> None:
        if data["template"] != "plain" or data["add_bos"] is False:
            add(("data", "template"), "the embedded target is trained with the plain template and BOS; another "
                                      "template or add_bos: false needs target.source: train")
