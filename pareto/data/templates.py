"""Prompt templates, chosen by name: how a question becomes the prompt the answer follows.

Every template is a prompt with a `{question}` slot; the answer follows it as " {answer}" and
EOS, and only the answer tokens (and EOS) are scored (`pareto.data.qa.encode_qa`). BOS is a
separate, explicit setting (`add_bos`), recorded with the target and with every result.

    plain        "Question: {question}\\nAnswer:"  the default; TOFU's Phi format (TOFU's
                 config: question_start_tag "Question: ", question_end_tag "\\n", answer_tag
                 "Answer: "), with "Answer:" counted as prompt so the loss covers the answer only
    phi          the same text as plain, by the model family's name
    llama2-chat  "[INST] {question} [/INST]"  Llama-2 chat's format (TOFU's llama2-7b tags;
                 BOS "<s>" comes from add_bos, as TOFU's start_of_sequence_token)
"""

from __future__ import annotations

from pareto._registry import did_you_mean

TEMPLATES: dict[str, str] = {
    "plain": "Question: {question}\nAnswer:",
    "phi": "Question: {question}\nAnswer:",
    "llama2-chat": "[INST] {question} [/INST]",
}


def resolve_template(name: str) -> str:
    """The prompt format string of a template name."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown prompt template {name!r}.{did_you_mean(str(name), list(TEMPLATES))} "
                         f"Available: {', '.join(TEMPLATES)}")
    return TEMPLATES[name]
