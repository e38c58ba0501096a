"""A deterministic fake retail catalog: families of variants with options, codes, prices and sizes.

Neutral records only; each simulator turns them into its own vendor shape. Names and SKUs depend on the
family index alone (so repeated seeding never collides); prices, weights and brands depend on the seed.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from itertools import product

ADJECTIVES = (
    "Harbor", "Summit", "Coastal", "Alpine", "Urban", "Meadow", "Canyon", "Drift", "Ember", "Fjord",
    "Granite", "Highland", "Island", "Juniper", "Kelp", "Lagoon", "Marina", "Nordic", "Orchard", "Prairie",
    "Quarry", "Ridge", "Sierra", "Tundra", "Upland", "Valley", "Willow", "Yarrow", "Zephyr", "Beacon",
)  # fmt: skip
NOUNS = (
    ("Tee", "Tops"), ("Hoodie", "Tops"), ("Crew Sweater", "Knitwear"), ("Cardigan", "Knitwear"),
    ("Chino", "Bottoms"), ("Jogger", "Bottoms"), ("Short", "Bottoms"), ("Rain Jacket", "Outerwear"),
    ("Puffer Vest", "Outerwear"), ("Overshirt", "Shirts"), ("Oxford Shirt", "Shirts"), ("Polo", "Tops"),
    ("Beanie", "Accessories"), ("Cap", "Accessories"), ("Scarf", "Accessories"), ("Sock", "Accessories"),
    ("Tote Bag", "Bags"), ("Backpack", "Bags"), ("Sneaker", "Footwear"), ("Boot", "Footwear"),
)  # fmt: skip
BRANDS = ("Dockside", "Northwind", "Tidewater", "Lumen & Co", "Fieldnote", "Paper Crane")
COLOURS = (
    ("Black", "BLK"), ("Navy", "NVY"), ("White", "WHT"), ("Grey Marle", "GRY"), ("Olive", "OLV"), ("Rust", "RST"),
    ("Sand", "SND"), ("Forest", "FOR"), ("Sky", "SKY"), ("Burgundy", "BUR"), ("Charcoal", "CHR"), ("Ochre", "OCH"),
)  # fmt: skip
SIZES = ("XS", "S", "M", "L", "XL", "XXL")
STYLES = (("Classic", "CL"), ("Slim", "SL"), ("Relaxed", "RX"), ("Cropped", "CR"), ("Long", "LG"))
PRICES = (19.9, 24.0, 29.9, 35.0, 39.9, 49.0, 59.0, 79.0, 99.0, 129.0)
MAX_VARIANTS = len(COLOURS) * len(SIZES) * len(STYLES)


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    ean: str
    options: tuple[tuple[str, str], ...]  # (attribute, value) pairs; empty for a product without variants
    price_incl: float
    supply_price: float
    weight_kg: float
    dimensions_cm: tuple[float, float, float]  # length, width, height
    image_url: str

    @property
    def label(self) -> str:
        return " / ".join(value for _, value in self.options)


@dataclass(frozen=True)
class FamilySpec:
    index: int
    name: str
    handle: str
    sku: str
    brand: str
    category: str
    description: str
    images: tuple[str, ...]
    variants: tuple[VariantSpec, ...]  # one option-less entry when the product has no variants

    @property
    def has_variants(self) -> bool:
        return bool(self.variants[0].options)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def ean13(first12: str) -> str:
    """Append the EAN-13 check digit (weights 1,3,1,3,...)."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


def _family_name(index: int) -> str:
    turn, noun_index = divmod(index, len(NOUNS))
    generation, adjective_index = divmod(turn, len(ADJECTIVES))
    name = f"{ADJECTIVES[adjective_index]} {NOUNS[noun_index][0]}"
    return f"{name} {generation + 1}" if generation else name


def _option_sets(count: int, rng: random.Random) -> list[tuple[tuple[str, str, str], ...]]:
    """`count` distinct option combinations as ((attribute, value, sku code), ...)."""
    colours = rng.sample(COLOURS, len(COLOURS))
    combos: list[tuple[tuple[str, str, str], ...]]
    if count <= len(COLOURS) * len(SIZES):
        colours = colours[: math.ceil(count / len(SIZES))]
        combos = [(("Colour", c, code), ("Size", s, s)) for (c, code), s in product(colours, SIZES)]
    else:
        combos = [
            (("Colour", c, code), ("Size", s, s), ("Style", st, st_code))
            for (c, code), s, (st, st_code) in product(colours, SIZES, STYLES)
        ]
    return combos[:count]


def generate_family(index: int, variants_per_family: int, rng: random.Random) -> FamilySpec:
    if not 0 <= variants_per_family <= MAX_VARIANTS:
        raise ValueError(f"variants_per_family must be between 0 and {MAX_VARIANTS}")
    name = _family_name(index)
    handle = slug(name)
    words = name.split()
    family_sku = f"{words[0][:3]}{words[1][:3]}".upper() + f"-{index:05d}"
    brand = rng.choice(BRANDS)
    base_price = rng.choice(PRICES)
    base_weight = round(rng.uniform(0.1, 1.5), 2)
    images = tuple(f"https://images.example.com/{handle}/{n}.jpg" for n in range(1, rng.randint(1, 3) + 1))
    option_sets = _option_sets(variants_per_family, rng) if variants_per_family else [()]
    variants = []
    for v, options in enumerate(option_sets):
        codes = [code for _, _, code in options]
        price = round(base_price + (5.0 if "XXL" in codes else 0.0), 2)
        colour = next((value for attr, value, _ in options if attr == "Colour"), "main")
        variants.append(
            VariantSpec(
                sku="-".join([family_sku, *codes]),
                ean=ean13(f"94{index:07d}{v:03d}"),
                options=tuple((attr, value) for attr, value, _ in options),
                price_incl=price,
                supply_price=round(price * 0.4, 2),
                weight_kg=base_weight,
                dimensions_cm=(30.0, 20.0, round(rng.uniform(2, 15), 1)),
                image_url=f"https://images.example.com/{handle}/{slug(colour)}.jpg",
            )
        )
    return FamilySpec(
        index=index,
        name=name,
        handle=handle,
        sku=family_sku,
        brand=brand,
        category=NOUNS[index % len(NOUNS)][1],
        description=f"<p>The {name} by {brand}. Made to last, cut for every day.</p>",
        images=images,
        variants=tuple(variants),
    )


def generate_catalog(families: int, variants_per_family: int, seed: int, start_index: int = 0) -> list[FamilySpec]:
    rng = random.Random(seed)
    return [generate_family(start_index + i, variants_per_family, rng) for i in range(families)]
