"""CIFAR-10 and CIFAR-100 (paper App. C): torchvision's copy (downloaded once where the internet is
reachable) or, with `data.path`, an ImageFolder directory of it (train/<class>/*.png,
test/<class>/*.png, or a .tar of one). The paper forgets 500 images of one class: dog (CIFAR-10),
bed (CIFAR-100) by default."""

from __future__ import annotations

from pareto.sources._base import SourceCheck, register_source
from pareto.sources._images import ImageSource


class Cifar(ImageSource):
    def preflight(self, data: dict, out: SourceCheck) -> None:
        if not data.get("path"):  # torchvision's downloader: can this machine get it?
            from pareto.vision.data import torchvision_problem

            why = torchvision_problem(self.name)
            if why:  # the spec itself is fine
                out.environment.append((("data", "path"), why))


@register_source("cifar10")
class Cifar10(Cifar):
    default_forget_class = "dog"
    summary = "CIFAR-10 (torchvision, or an ImageFolder copy in data.path); forgets images of one class"


@register_source("cifar100")
class Cifar100(Cifar):
    default_forget_class = "bed"
    summary = "CIFAR-100 (torchvision, or an ImageFolder copy in data.path); forgets images of one class"
