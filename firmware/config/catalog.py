"""The product catalog: what each product is, costs, and who may buy it."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from firmware.config.source import Strict, listed_twice, read_yaml, validate
from firmware.domain import (
    BOTTLED_WATER_KINDS,
    DRINK_CATEGORIES,
    DRINK_KINDS,
    PROFILES,
    Allergen,
    Category,
    Kind,
    Profile,
)

PRODUCT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # ASCII: it names the product in reports and DEX files


class Names(Strict):
    zh_tw: str = Field(alias="zh-TW", min_length=1, max_length=60)
    en: str = Field(min_length=1, max_length=60)


FAT_KCAL_PER_G = 9  # the energy factors of Taiwan's nutrition labels (and the rules' energy shares)
SUGAR_KCAL_PER_G = 4
# a label's energy may fall short of what its fat and sugar carry by this share and these kcal (rounding,
# a lab's spread, "0" under 4 kcal): our reading, docs/rules.md
LABEL_SHORTFALL, LABEL_ROUNDING_KCAL = 0.2, 4.0


class Nutrition(Strict):
    """Per serving; a package is one serving (Article 15 of the canteen regulation)."""

    serving_g: float = Field(gt=0, le=5000)
    kcal: float = Field(ge=0, le=5000)
    fat_g: float = Field(ge=0, le=1000)
    sat_fat_g: float = Field(ge=0, le=1000)
    sugar_g: float = Field(ge=0, le=1000)
    added_sugar_g: float = Field(ge=0, le=1000)
    sodium_mg: float = Field(ge=0, le=100_000)
    trans_fat_g: float = Field(default=0.0, ge=0, le=1000)

    @model_validator(mode="after")
    def _a_label_that_adds_up(self) -> Nutrition:
        """Parts within their wholes, and energy at least what the fat and sugar carry.

        Every fat and sugar rule is a share of the label's energy: ``kcal: 0`` on a bag of nuts had each
        share taken as 0 % and the nuts allowed, and saturated fat above the fat, or added sugar above
        the sugar, was read as written.
        """
        parts = (
            ("saturated fat", self.sat_fat_g, "fat", self.fat_g),
            ("trans fat", self.trans_fat_g, "fat", self.fat_g),
            ("added sugar", self.added_sugar_g, "sugar", self.sugar_g),
        )
        for what, part, whole_name, whole in parts:
            if part > whole:
                raise ValueError(f"{what} {part:g} g is more than the {whole_name} it is part of, {whole:g} g")
        carried = self.fat_g * FAT_KCAL_PER_G + self.sugar_g * SUGAR_KCAL_PER_G
        if self.kcal < carried * (1 - LABEL_SHORTFALL) - LABEL_ROUNDING_KCAL:
            raise ValueError(
                f"kcal {self.kcal:g} is less than the fat and sugar alone carry: {carried:g} kcal "
                f"({FAT_KCAL_PER_G} and {SUGAR_KCAL_PER_G} kcal/g); every rule measured as a share of energy "
                "would read a label like this as under its limit"
            )
        return self


class Beverage(Strict):
    volume_ml: int = Field(gt=0, le=5000)
    sweetened: bool = False
    bottled_water: bool = False
    caffeine_mg: float = Field(default=0, ge=0, le=2000)


class Product(Strict):
    name: Names
    category: Category
    price: int = Field(gt=0, le=100_000)
    profiles: list[Profile] = list(PROFILES)
    nutrition: Nutrition | None = None
    beverage: Beverage | None = None
    # label facts the campus food rules read (docs/rules.md)
    kind: Kind | None = None
    sweeteners: list[str] = []
    fat_substitutes: bool = False
    labelled: bool = True
    # the label's allergen statement, in Taiwan's 11 labelling categories (docs/rules.md): what the
    # product contains, and what it may contain (cross-contact: not regulated, blocked all the same)
    allergens: list[Allergen] = []
    may_contain: list[Allergen] = []

    @model_validator(mode="after")
    def _label_agrees_with_kind(self) -> Product:
        """A drink names its kind and the label's facts agree with it, since the rules read the kind alone.

        A drink without a kind, or with a food's, was read as a snack, outside every drink rule: bottled
        water was allowed at a Taipei junior high; ``bottled_water: true`` on a "tea" and
        ``sweetened: false`` on a label with added sugar were read by no rule at all.
        """
        drink = ""  # why this product is a drink, if it is one
        if self.category == "drink":
            drink = "its category is drink"
        elif self.beverage is not None:
            drink = "it has a beverage label"
        kinds = ", ".join(DRINK_KINDS)
        if drink and self.kind is None:
            raise ValueError(f"kind: a drink ({drink}) must say its kind ({kinds}); the campus drink rules read it")
        if drink and self.kind not in DRINK_KINDS:
            raise ValueError(f"kind: {self.kind} is a food, but {drink}; a drink's kind is one of {kinds}")
        if self.kind in DRINK_KINDS and self.category not in DRINK_CATEGORIES:
            raise ValueError(
                f"kind: {self.kind} is a drink, but the category is {self.category}; "
                f"a drink's category is {' or '.join(DRINK_CATEGORIES)}"
            )
        if self.beverage is None:
            return self
        if self.beverage.bottled_water != (self.kind in BOTTLED_WATER_KINDS):
            raise ValueError(
                f"beverage.bottled_water: {str(self.beverage.bottled_water).lower()} disagrees with kind "
                f"{self.kind}: bottled water is kind {' or '.join(BOTTLED_WATER_KINDS)}, and only it"
            )
        added_sugar = self.nutrition.added_sugar_g if self.nutrition is not None else 0
        if not self.beverage.sweetened and (added_sugar > 0 or self.sweeteners):
            what = f"{added_sugar:g} g of added sugar" if added_sugar > 0 else f"sweeteners {self.sweeteners}"
            raise ValueError(f"beverage.sweetened: false, but the label lists {what}")
        return self

    @field_validator("profiles")
    @classmethod
    def _profiles_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one profile must be allowed")
        if listed_twice(value) is not None:
            raise ValueError("profiles are listed twice")
        return value


class Catalog(Strict):
    products: dict[str, Product]

    @field_validator("products")
    @classmethod
    def _ids(cls, value: dict[str, Product]) -> dict[str, Product]:
        if not value:
            raise ValueError("the catalog lists no products")
        for product_id in value:
            if not PRODUCT_ID.fullmatch(product_id):
                raise ValueError(
                    f"product id {product_id!r} must be 1-64 ASCII letters, digits, '-', '_' or '.' "
                    "(a product code, as in DEX audit files; the product's names carry any script)"
                )
        return value


def load_catalog(path: Path, display_name: str | None = None) -> Catalog:
    return validate(Catalog, read_yaml(path, display_name))
