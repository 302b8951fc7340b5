"""Fixed learning rate: η stays what the optimizer was given."""

from dataclasses import dataclass

from pareto.core.lr._base import LRRule, register_lr_rule


@register_lr_rule("fixed")
@dataclass
class Fixed(LRRule):
    def next_lr(self, step, lr, probe):
        return lr, None
