"""Human review round trip: pick items to check, export them to Label Studio, read the answers back as gold."""

from .export import export_review
from .roundtrip import import_annotations

__all__ = ["export_review", "import_annotations"]
