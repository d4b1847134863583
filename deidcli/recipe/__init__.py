"""Recipes: which action applies to which attribute."""

from deidcli.recipe.load import Problem, builtin_names, load_recipe, parse_recipe_text
from deidcli.recipe.model import STRICTNESS, Action, Recipe, Rule, TagPattern, parse_tag, strictest

__all__ = [
    "STRICTNESS",
    "Action",
    "Problem",
    "Recipe",
    "Rule",
    "TagPattern",
    "builtin_names",
    "load_recipe",
    "parse_recipe_text",
    "parse_tag",
    "strictest",
]
