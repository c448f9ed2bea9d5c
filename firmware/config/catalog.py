"""The product catalog: what each product is, costs, and who may buy it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from firmware.config.source import read_yaml, validate
from firmware.ports import PROFILES

Category = Literal["drink", "dairy", "snack", "bakery", "stationery"]
CATEGORIES: tuple[str, ...] = ("drink", "dairy", "snack", "bakery", "stationery")
KINDS: tuple[str, ...] = (
    "fresh_milk", "uht_milk", "soy_milk", "yogurt_drink", "juice_100", "packaged_water", "mineral_water", "tea",
    "coffee", "sports_drink", "soda", "flavoured_milk", "lactic_drink", "egg", "bread", "biscuit", "rice_product",
    "snack", "fruit", "meal", "non_food",
)


class Strict(BaseModel):
    """Base for config models: unknown keys are errors and YAML strings never pass as numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Names(Strict):
    zh_tw: str = Field(alias="zh-TW", min_length=1, max_length=60)
    en: str = Field(min_length=1, max_length=60)


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


class Beverage(Strict):
    volume_ml: int = Field(gt=0, le=5000)
    sweetened: bool = False
    bottled_water: bool = False
    caffeine_mg: float = Field(default=0, ge=0, le=2000)


class Product(Strict):
    name: Names
    category: Category
    price: int = Field(gt=0, le=100_000)
    profiles: list[Literal["student", "staff", "guest"]] = list(PROFILES)  # type: ignore[assignment]
    nutrition: Nutrition | None = None
    beverage: Beverage | None = None
    # label facts the campus food rules read (docs/rules.md)
    kind: Literal[KINDS] | None = None  # type: ignore[valid-type]
    sweeteners: list[str] = []
    fat_substitutes: bool = False
    labelled: bool = True

    @field_validator("profiles")
    @classmethod
    def _profiles_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one profile must be allowed")
        if len(set(value)) != len(value):
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
            if not product_id or len(product_id) > 64 or not all(c.isalnum() or c in "-_." for c in product_id):
                raise ValueError(f"product id {product_id!r} must be 1-64 letters, digits, '-', '_' or '.'")
        return value


def load_catalog(path: Path, display_name: str | None = None) -> Catalog:
    return validate(Catalog, read_yaml(path, display_name))
