"""Pictures of networks and of their runs: drawings, animations, traces.

Plot functions take and return matplotlib ``Axes``; demos compose them.
"""

from .animate import animate_network
from .draw import check_drawable, draw_network, drawable, layout
from .hinton import hinton, hinton_mosaic
from .images import picture_shape, scaled_rows, tiles
from .traces import plot_distributions, plot_running_mean, plot_state_trace

__all__ = ["layout", "draw_network", "check_drawable", "drawable", "animate_network", "hinton", "hinton_mosaic",
           "tiles", "scaled_rows", "picture_shape", "plot_distributions", "plot_running_mean", "plot_state_trace"]
