"""Interactive panels (ipywidgets): the shared base of every domain's sculpting panel."""
from sculpting.ui.panel import SculptingPanel

__all__ = ["SculptingPanel"]
