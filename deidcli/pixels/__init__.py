"""Pixel handling: refuse what cannot be cleaned, mask rectangles frame by frame, write pixels back safely."""

from deidcli.pixels.frames import check_pixels_cleanable, frame_count
from deidcli.pixels.overlays import mask_overlays, overlay_images
from deidcli.pixels.regions import RegionRule, load_region_rules, match_regions
from deidcli.pixels.rewrite import PixelReport, copy_pixels_untouched, rewrite_pixels

__all__ = [
    "PixelReport",
    "RegionRule",
    "check_pixels_cleanable",
    "copy_pixels_untouched",
    "frame_count",
    "load_region_rules",
    "mask_overlays",
    "match_regions",
    "overlay_images",
    "rewrite_pixels",
]
