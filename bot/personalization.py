"""Step 6 of a turn: the shopper's constraints as hard search filters, and why a product fits.

Budget, size, colours, brands, material exclusions and allergens are hard
filters: they go to the index as :class:`kb.models.SearchFilters` and a product
that breaks one is never presented as a match. When nothing satisfies them the
engine says so and shows the closest options with the constraint each breaks
(:func:`broken_constraints`), never silently dropping one.

A brand the message implies through a product-line name ("iPhone 13" → Apple, see
:mod:`kb.product_lines`) is a hard filter too, but not a declared constraint: it is
passed beside the constraints (``implied``), and the cards say where it came from
("by Apple, the maker of iPhone").
"""

from __future__ import annotations

from decimal import Decimal

from bot.constraints import Constraints
from bot.i18n import _, format_price
from bot.profile import dietary_label, local_term
from kb.models import Product, SearchFilters
from kb.product_lines import ImpliedBrand

# Shoe sizes converted to EU for catalogs that stock EU sizes (unisex/men's lasts).
US_TO_EU = {"6": "39", "6.5": "39", "7": "40", "7.5": "40", "8": "41", "8.5": "41", "9": "42", "9.5": "42",
            "10": "43", "10.5": "44", "11": "44", "11.5": "45", "12": "45", "13": "46"}
UK_TO_EU = {"5": "38", "5.5": "38", "6": "39", "6.5": "40", "7": "41", "7.5": "41", "8": "42", "8.5": "42",
            "9": "43", "9.5": "44", "10": "44", "10.5": "45", "11": "45", "12": "46"}
# Dietary labels that mean "free of these allergens": filtered as hard exclusions.
FREE_FROM_LABELS = {
    "gluten_free": ("gluten",),
    "nut_free": ("nuts", "peanuts"),
    "peanut_free": ("peanuts",),
    "lactose_free": ("milk",),
    "dairy_free": ("milk",),
    "egg_free": ("eggs",),
    "soy_free": ("soy",),
}


def _label(value: str) -> str:
    return value.casefold().replace("-", "_").replace(" ", "_")


def eu_sizes(constraints: Constraints) -> tuple[str, ...]:
    sizes: list[str] = []
    for size in constraints.sizes:
        value = size.value.upper() if size.system == "clothing" else size.value
        if size.system == "shoe_us":
            value = US_TO_EU.get(size.value, "")
        elif size.system == "shoe_uk":
            value = UK_TO_EU.get(size.value, "")
        if value:
            sizes.append(value)
    return tuple(sizes)


def filters_for(
    constraints: Constraints, *, lang: str | None = None, in_stock_only: bool = False, implied: ImpliedBrand | None = None
) -> SearchFilters:
    """The hard filters that the shopper's declared constraints imply, and the brand a product line implies."""
    exclude_allergens: list[str] = []
    dietary: list[str] = []
    for label in (_label(d) for d in constraints.dietary):
        if label in FREE_FROM_LABELS:
            exclude_allergens.extend(FREE_FROM_LABELS[label])
        else:
            dietary.append(label.replace("_", "-"))
    budget = constraints.budget
    brands = tuple(constraints.brands_include)
    if implied is not None and implied.brand.casefold() not in {b.casefold() for b in brands}:
        brands = (*brands, implied.brand)  # alone, or beside a "brand" that is the line itself ("PlayStation")
    return SearchFilters(
        max_price=Decimal(budget.max) if budget.max is not None else None,
        min_price=Decimal(budget.min) if budget.min is not None else None,
        in_stock_only=in_stock_only,
        sizes=eu_sizes(constraints),
        colors=tuple(constraints.colors_include),
        exclude_colors=tuple(constraints.colors_exclude),
        exclude_materials=tuple(constraints.materials_exclude),
        exclude_allergens=tuple(dict.fromkeys(exclude_allergens)),
        dietary=tuple(dict.fromkeys(dietary)),
        brands=brands,
        exclude_brands=tuple(constraints.brands_exclude),
        lang=lang,
    )


def _is_by(product: Product, implied: ImpliedBrand | None) -> bool:
    return implied is not None and product.brand.casefold() == implied.brand.casefold()


def fit_reason(product: Product, constraints: Constraints, currency: str, implied: ImpliedBrand | None = None) -> str:
    """A short "why this one" in the current locale ("by Apple, the maker of iPhone · under your 100 € budget")."""
    parts: list[str] = []
    if implied is not None and _is_by(product, implied):
        parts.append(_("by {brand}, the maker of {line}", brand=product.brand, line=implied.line))
    if constraints.budget.max is not None:
        parts.append(_("under your {budget} budget", budget=format_price(Decimal(constraints.budget.max), currency)))
    sizes = eu_sizes(constraints)
    available = {v.options.get("size", "").upper() for v in product.variants if v.in_stock}
    in_size = [s for s in sizes if s.upper() in available]
    if in_size:
        parts.append(_("available in size {size}", size=in_size[0]))
    colors = product.option_values("color") | {str(c).casefold() for c in product.attributes.get("colors") or []}
    wanted = [c for c in constraints.colors_include if c.casefold() in colors]
    if wanted:
        parts.append(_("comes in {color}", color=wanted[0]))
    labels = {_label(str(d)) for d in product.attributes.get("dietary") or []}
    free_from = {str(a).casefold() for a in product.attributes.get("free_from") or []}
    for diet in constraints.dietary:
        # only what the product's own label says: a candle is not "labelled nut-free" because it contains no food
        allergens = set(FREE_FROM_LABELS.get(_label(diet), ()))
        if _label(diet) in labels or (allergens and allergens <= free_from):
            parts.append(_("labelled {diet}", diet=dietary_label(diet)))
    return " · ".join(parts)


def broken_constraints(
    product: Product, filters: SearchFilters, currency: str, implied: ImpliedBrand | None = None
) -> list[str]:
    """What a near miss breaks, in words, so the shopper can decide (``implied``: the brand a product line implied)."""
    broken: list[str] = []
    if filters.max_price is not None and product.min_price > filters.max_price:
        broken.append(_("costs {price}, over your budget", price=format_price(product.min_price, currency)))
    if filters.min_price is not None and max(v.price for v in product.variants) < filters.min_price:
        broken.append(_("below your minimum price"))
    if filters.sizes:
        available = {v.options.get("size", "").upper() for v in product.variants if v.in_stock}
        if not available & {s.upper() for s in filters.sizes}:
            broken.append(_("not available in your size"))
    if not product.in_stock:
        broken.append(_("out of stock"))
    materials = {str(m).casefold() for m in product.attributes.get("materials") or []}
    broken.extend(_("contains {material}", material=local_term(m)) for m in filters.exclude_materials if m.casefold() in materials)
    colors = product.option_values("color") | {str(c).casefold() for c in product.attributes.get("colors") or []}
    if filters.colors and colors and not colors & {c.casefold() for c in filters.colors}:
        broken.append(_("not in the colour you asked for"))
    if filters.exclude_colors and colors and colors <= {c.casefold() for c in filters.exclude_colors}:
        broken.append(_("only in a colour you avoid"))
    brand = product.brand.casefold()
    if filters.brands and brand not in {b.casefold() for b in filters.brands}:
        declared = [b for b in filters.brands if implied is None or b.casefold() != implied.brand.casefold()]
        if implied is not None and not declared:
            broken.append(_("not by {brand}, the maker of {line}", brand=implied.brand, line=implied.line))
        else:
            broken.append(_("not the brand you asked for"))
    if brand and brand in {b.casefold() for b in filters.exclude_brands}:
        broken.append(_("a brand you avoid"))
    return broken
