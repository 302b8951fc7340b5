"""Your own images: an ImageFolder directory (train/<class>/*.jpg and test/<class>/*.jpg, or a .tar
of one) in `data.path`, decoded to 32×32 once and cached; `data.forget_class` names the class
folder forgotten."""

from __future__ import annotations

from pareto.sources._base import register_source
from pareto.sources._images import ImageSource


@register_source("image_folder")
class ImageFolder(ImageSource):
    summary = "your own images in ImageFolder layout (train/<class>/, test/<class>/) in data.path"

    def folder_given(self, data: dict, add) -> bool:
        if not data["path"]:
            add(("data", "path"), "data.source image_folder needs data.path: a directory with train/<class>/*.jpg "
                                  "and test/<class>/*.jpg (or a .tar of one)")
            return False
        return True
