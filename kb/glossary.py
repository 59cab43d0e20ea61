"""A retail glossary: common shopping words in Spanish, French, German and Portuguese, in English.

The offline embedder (multilingual-e5-small) places many everyday product words
of other languages poorly next to an English catalog ("calcetines" lands nearer
energy bars than socks), and BM25 cannot match them at all. :func:`translations`
finds these words in a query and returns their English equivalents, which
:func:`kb.query.clean_query` appends to the search text: the catalog's own words
then match lexically and pull the query vector to the right place.

The table is general retail vocabulary (departments, product types, materials,
colours, a few qualifiers), one entry per concept; it is not a list of the
queries of any evaluation set. Entries are written in lower case with accents;
matching ignores case and accents, a space matches spaces or hyphens, and
plural forms are listed where they differ beyond a final -s/-es.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Final

__all__ = ["GLOSSARY", "glossary_terms", "translations"]

# English term: (Spanish, French, German, Portuguese) forms, "|"-separated.
GLOSSARY: Final[dict[str, tuple[str, str, str, str]]] = {
    # apparel and footwear
    "socks": ("calcetines|calcetín|medias", "chaussettes|chaussette", "socken|socke|strümpfe", "meias|meia"),
    "shoes": ("zapatos|zapato|calzado", "chaussures|chaussure", "schuhe|schuh", "sapatos|sapato|calçados"),
    "sneakers": ("zapatillas|deportivas", "baskets|sneakers", "turnschuhe|sneaker", "tênis"),
    "running shoes": ("zapatillas de correr|zapatillas de running", "chaussures de course|chaussures de running",
                      "laufschuhe", "tênis de corrida"),
    "boots": ("botas|bota|botines", "bottes|botte|bottines", "stiefel|boots|stiefeletten", "botas|bota|coturno"),
    "hiking boots": ("botas de montaña|botas de senderismo", "chaussures de randonnée|bottes de randonnée",
                     "wanderschuhe|wanderstiefel", "botas de trilha|botas de caminhada"),
    "sandals": ("sandalias|chanclas", "sandales|tongs", "sandalen|flip flops", "sandálias|chinelos"),
    "slippers": ("pantuflas|zapatillas de casa", "chaussons|pantoufles", "hausschuhe|pantoffeln", "pantufas"),
    "heels": ("tacones|zapatos de tacón", "talons|escarpins", "high heels|absatzschuhe|pumps", "saltos|salto alto"),
    "jacket": ("chaqueta|chaquetas|cazadora", "veste|vestes|blouson", "jacke|jacken", "jaqueta|jaquetas"),
    "coat": ("abrigo|abrigos", "manteau|manteaux", "mantel", "casaco|casacos"),
    "raincoat": ("chubasquero|impermeable", "imperméable|k-way", "regenjacke|regenmantel", "capa de chuva"),
    "shirt": ("camisa|camisas", "chemise|chemises", "hemd|hemden", "camisa|camisas"),
    "t-shirt": ("camiseta|camisetas|playera", "t-shirt|tee-shirt|tshirt", "t-shirt|shirt", "camiseta|camisetas"),
    "sweater": ("jersey|suéter|sudadera", "pull|pull-over|sweat", "pullover|pulli|sweatshirt", "suéter|blusa de frio|moletom"),
    "trousers": ("pantalones|pantalón", "pantalon|pantalons", "hose|hosen", "calça|calças"),
    "jeans": ("vaqueros|tejanos", "jean", "jeans", "calça jeans"),
    "shorts": ("pantalones cortos|bermudas", "short|bermuda", "kurze hose|shorts", "bermuda|shorts"),
    "skirt": ("falda|faldas", "jupe|jupes", "rock|röcke", "saia|saias"),
    "dress": ("vestido|vestidos", "robe|robes", "kleid|kleider", "vestido|vestidos"),
    "suit": ("traje|trajes", "costume|tailleur", "anzug|anzüge", "terno|ternos"),
    "swimsuit": ("bañador|traje de baño|bikini", "maillot de bain", "badeanzug|badehose|bikini", "maiô|biquíni|sunga"),
    "pajamas": ("pijama|pijamas", "pyjama", "schlafanzug|pyjama", "pijama"),
    "underwear": ("ropa interior", "sous-vêtements|lingerie", "unterwäsche", "roupa íntima|cueca|calcinha"),
    "hat": ("sombrero|gorro|gorra", "chapeau|bonnet|casquette", "hut|mütze|kappe", "chapéu|gorro|boné"),
    "scarf": ("bufanda|pañuelo", "écharpe|foulard", "schal|tuch", "cachecol|lenço"),
    "gloves": ("guantes", "gants", "handschuhe", "luvas"),
    "belt": ("cinturón", "ceinture", "gürtel", "cinto"),
    "tie": ("corbata", "cravate", "krawatte", "gravata"),
    "clothes": ("ropa", "vêtements", "kleidung", "roupa|roupas"),
    # bags and accessories
    "bag": ("bolso|bolsa|bolsos", "sac|sacs", "tasche|taschen", "bolsa|bolsas"),
    "handbag": ("bolso de mano|cartera", "sac à main", "handtasche|handtaschen", "bolsa de mão"),
    "backpack": ("mochila|mochilas", "sac à dos", "rucksack|rucksäcke", "mochila|mochilas"),
    "wallet": ("billetera|cartera|monedero", "portefeuille|porte-monnaie", "geldbörse|portemonnaie", "carteira"),
    "suitcase": ("maleta|maletas", "valise|valises", "koffer", "mala|malas"),
    "watch": ("reloj|relojes", "montre|montres", "uhr|uhren|armbanduhr", "relógio|relógios"),
    "sunglasses": ("gafas de sol|lentes de sol", "lunettes de soleil", "sonnenbrille", "óculos de sol"),
    "glasses": ("gafas|lentes", "lunettes", "brille", "óculos"),
    "jewelry": ("joyas|joyería|bisutería", "bijoux", "schmuck", "joias|bijuteria"),
    "earrings": ("pendientes|aretes", "boucles d'oreilles", "ohrringe", "brincos"),
    "necklace": ("collar|collares", "collier", "halskette|kette", "colar"),
    "ring": ("anillo", "bague", "ring", "anel"),
    "bracelet": ("pulsera", "bracelet", "armband", "pulseira"),
    "umbrella": ("paraguas", "parapluie", "regenschirm", "guarda-chuva"),
    # beauty and personal care
    "perfume": ("perfume|colonia|fragancia", "parfum|eau de toilette", "parfüm|duft", "perfume|colônia"),
    "lipstick": ("pintalabios|barra de labios|labial", "rouge à lèvres", "lippenstift", "batom"),
    "mascara": ("rímel|máscara de pestañas", "mascara", "wimperntusche", "rímel|máscara de cílios"),
    "nail polish": ("esmalte de uñas|pintaúñas|esmalte", "vernis à ongles|vernis", "nagellack", "esmalte"),
    "makeup": ("maquillaje", "maquillage", "make-up|schminke", "maquiagem"),
    "moisturizer": ("crema hidratante|hidratante", "crème hydratante|hydratant", "feuchtigkeitscreme", "hidratante"),
    "cream": ("crema", "crème", "creme", "creme"),
    "lotion": ("loción", "lotion", "lotion", "loção"),
    "skin": ("piel", "peau", "haut", "pele"),
    "dry skin": ("piel seca", "peau sèche", "trockene haut", "pele seca"),
    "shampoo": ("champú", "shampooing", "shampoo|haarshampoo", "xampu"),
    "soap": ("jabón", "savon", "seife", "sabonete|sabão"),
    "body wash": ("gel de ducha", "gel douche", "duschgel", "sabonete líquido"),
    "toothpaste": ("pasta de dientes", "dentifrice", "zahnpasta", "pasta de dente"),
    "sunscreen": ("protector solar", "crème solaire", "sonnencreme", "protetor solar"),
    # electronics
    "phone": ("teléfono|móvil|celular", "téléphone|portable|mobile", "handy|telefon", "telefone|celular"),
    "smartphone": ("smartphone|teléfono inteligente", "smartphone", "smartphone", "smartphone"),
    "laptop": ("portátil|laptop|ordenador portátil|computadora portátil", "ordinateur portable|pc portable",
               "laptop|notebook", "notebook|laptop"),
    "computer": ("ordenador|computadora", "ordinateur", "computer|rechner", "computador"),
    "tablet": ("tableta", "tablette", "tablet", "tablet"),
    "headphones": ("auriculares|cascos|audífonos", "casque|écouteurs", "kopfhörer", "fones de ouvido|fone de ouvido|fones"),
    "earphones": ("auriculares|audífonos", "écouteurs", "ohrhörer|in-ear", "fones de ouvido"),
    "speaker": ("altavoz|altavoces|bocina", "enceinte|haut-parleur", "lautsprecher", "caixa de som"),
    "charger": ("cargador", "chargeur", "ladegerät", "carregador"),
    "camera": ("cámara", "appareil photo|caméra", "kamera", "câmera"),
    "television": ("televisor|televisión|tele", "télévision|téléviseur|télé", "fernseher", "televisão|tv"),
    "printer": ("impresora", "imprimante", "drucker", "impressora"),
    "ink": ("tinta|cartucho|cartuchos", "encre|cartouche|cartouches", "tinte|patrone|patronen", "tinta|cartucho"),
    "wireless": ("inalámbrico|inalámbricos|inalámbrica|inalámbricas", "sans fil", "kabellos|kabellose|kabellosen",
                 "sem fio"),
    "smartwatch": ("reloj inteligente", "montre connectée", "smartwatch", "relógio inteligente"),
    # home
    "lamp": ("lámpara", "lampe", "lampe|leuchte", "luminária|abajur|lâmpada"),
    "light": ("luz|iluminación", "lumière|éclairage", "licht|beleuchtung", "luz|iluminação"),
    "candle": ("vela|velas", "bougie|bougies", "kerze|kerzen", "vela|velas"),
    "vase": ("jarrón|florero", "vase", "vase", "vaso de flores"),
    "frame": ("marco|portarretratos", "cadre", "bilderrahmen|rahmen", "porta-retrato|moldura"),
    "mirror": ("espejo", "miroir", "spiegel", "espelho"),
    "cushion": ("cojín|almohada", "coussin|oreiller", "kissen", "almofada|travesseiro"),
    "blanket": ("manta|cobija", "couverture|plaid", "decke", "cobertor|manta"),
    "towel": ("toalla", "serviette|drap de bain", "handtuch", "toalha"),
    "plant": ("planta|plantas", "plante|plantes", "pflanze|pflanzen", "planta|plantas"),
    "plant pot": ("maceta|macetero", "pot de fleurs|cache-pot", "blumentopf|übertopf", "vaso de planta"),
    "decoration": ("decoración|adorno|adornos", "décoration|déco", "deko|dekoration", "decoração|enfeite"),
    "home": ("casa|hogar", "maison", "zuhause|wohnung|haus", "casa|lar"),
    "furniture": ("muebles|mueble", "meubles|meuble", "möbel", "móveis|móvel"),
    "chair": ("silla", "chaise", "stuhl", "cadeira"),
    "table": ("mesa", "table", "tisch", "mesa"),
    "sofa": ("sofá", "canapé", "sofa|couch", "sofá"),
    "bed": ("cama", "lit", "bett", "cama"),
    "clock": ("reloj de pared", "horloge|pendule", "wanduhr", "relógio de parede"),
    # kitchen
    "kitchen": ("cocina", "cuisine", "küche", "cozinha"),
    "knife": ("cuchillo|cuchillos", "couteau|couteaux", "messer", "faca|facas"),
    "pan": ("sartén|sartenes", "poêle|poêles", "pfanne|bratpfanne", "frigideira"),
    "pot": ("olla|cacerola|cazo", "casserole|marmite", "topf|kochtopf", "panela"),
    "wok": ("wok", "wok", "wok", "wok"),
    "cup": ("taza|vaso", "tasse", "tasse|becher", "xícara|copo"),
    "mug": ("taza", "mug", "becher|tasse", "caneca"),
    "drinking glass": ("vaso de cristal|copa", "verre", "trinkglas", "copo de vidro"),
    "plate": ("plato|platos", "assiette|assiettes", "teller", "prato|pratos"),
    "bowl": ("cuenco|bol", "bol", "schüssel", "tigela"),
    "cutting board": ("tabla de cortar", "planche à découper", "schneidebrett", "tábua de corte"),
    "blender": ("licuadora|batidora", "mixeur|blender", "mixer|standmixer", "liquidificador"),
    "hand blender": ("batidora de mano", "mixeur plongeant", "stabmixer|pürierstab", "mixer de mão"),
    "kettle": ("hervidor", "bouilloire", "wasserkocher", "chaleira"),
    "coffee maker": ("cafetera", "cafetière", "kaffeemaschine", "cafeteira"),
    "grater": ("rallador", "râpe", "reibe", "ralador"),
    "peeler": ("pelador", "éplucheur|économe", "schäler|sparschäler", "descascador"),
    "whisk": ("batidor|varillas", "fouet", "schneebesen", "batedor"),
    "strainer": ("colador", "passoire", "sieb", "coador|peneira"),
    "oven": ("horno", "four", "ofen|backofen", "forno"),
    "microwave": ("microondas", "micro-ondes", "mikrowelle", "micro-ondas"),
    "bottle": ("botella", "bouteille|gourde", "flasche", "garrafa"),
    "tray": ("bandeja", "plateau", "tablett", "bandeja"),
    "baking": ("repostería|hornear", "pâtisserie", "backen", "confeitaria"),
    "cookies": ("galletas", "biscuits|cookies", "kekse|plätzchen", "biscoitos|bolachas"),
    # food and drink
    "food": ("comida|alimento|alimentos", "nourriture|aliments", "essen|lebensmittel", "comida|alimentos"),
    "coffee": ("café", "café", "kaffee", "café"),
    "tea": ("té|infusión", "thé|tisane|infusion", "tee", "chá"),
    "chocolate": ("chocolate", "chocolat", "schokolade", "chocolate"),
    "bread": ("pan de molde|barra de pan", "pain", "brot", "pão"),
    "cheese": ("queso", "fromage", "käse", "queijo"),
    "milk": ("leche", "lait", "milch", "leite"),
    "eggs": ("huevos|huevo", "œufs|oeufs", "eier", "ovos"),
    "meat": ("carne", "viande", "fleisch", "carne"),
    "chicken": ("pollo", "poulet", "hähnchen|huhn", "frango"),
    "fish": ("pescado|pescados", "poisson", "fisch", "peixe"),
    "fruit": ("fruta|frutas", "fruits|fruit", "obst|früchte", "fruta|frutas"),
    "vegetables": ("verduras|hortalizas|vegetales", "légumes", "gemüse", "legumes|verduras"),
    "juice": ("zumo|jugo", "jus", "saft", "suco"),
    "soft drinks": ("refrescos|gaseosas", "sodas|boissons gazeuses", "limonade|erfrischungsgetränke", "refrigerante|refrigerantes"),
    "water": ("agua", "eau", "wasser", "água"),
    "wine": ("vino", "vin", "wein", "vinho"),
    "honey": ("miel", "miel", "honig", "mel"),
    "rice": ("arroz", "riz", "reis", "arroz"),
    "oil": ("aceite", "huile", "öl", "óleo|azeite"),
    "snacks": ("aperitivos|tentempiés", "en-cas|grignotines", "snacks|knabbereien", "lanches|petiscos"),
    "nuts": ("frutos secos|nueces", "noix|fruits secs", "nüsse", "nozes|castanhas"),
    "spices": ("especias", "épices", "gewürze", "temperos|especiarias"),
    "pet food": ("pienso|comida para perros|comida para gatos", "croquettes", "tierfutter|hundefutter|katzenfutter", "ração"),
    "dog": ("perro|perros", "chien|chiens", "hund|hunde", "cachorro|cão"),
    "cat": ("gato|gatos", "chat|chats", "katze|katzen", "gato|gatos"),
    "baby": ("bebé|bebe", "bébé", "baby", "bebê"),
    "diapers": ("pañales", "couches", "windeln", "fraldas"),
    "toy": ("juguete|juguetes", "jouet|jouets", "spielzeug", "brinquedo|brinquedos"),
    "game": ("juego|juegos", "jeu|jeux", "spiel|spiele", "jogo|jogos"),
    "video games": ("videojuegos", "jeux vidéo", "videospiele|games", "videogames|games"),
    "gift": ("regalo|regalos", "cadeau|cadeaux", "geschenk|geschenke", "presente|presentes"),
    # sport, outdoor, tools, vehicles
    "ball": ("pelota|balón", "ballon|balle", "ball", "bola"),
    "racket": ("raqueta", "raquette", "schläger", "raquete"),
    "tennis": ("tenis", "tennis", "tennis", "tênis"),
    "bicycle": ("bicicleta|bici", "vélo|bicyclette", "fahrrad", "bicicleta"),
    "helmet": ("casco", "casque", "helm", "capacete"),
    "tent": ("tienda de campaña", "tente", "zelt", "barraca"),
    "sports": ("deporte|deportes", "sport", "sport", "esporte|esportes"),
    "tools": ("herramientas", "outils", "werkzeug", "ferramentas"),
    "garden": ("jardín", "jardin", "garten", "jardim"),
    "lawn mower": ("cortacésped", "tondeuse", "rasenmäher", "cortador de grama"),
    "car": ("coche|auto|carro", "voiture", "auto|wagen", "carro"),
    "tires": ("neumáticos|llantas", "pneus", "reifen", "pneus"),
    "motorcycle": ("moto|motocicleta", "moto", "motorrad", "moto"),
    # materials
    "wool": ("lana", "laine", "wolle", "lã"),
    "cotton": ("algodón", "coton", "baumwolle", "algodão"),
    "leather": ("cuero|piel", "cuir", "leder", "couro"),
    "silk": ("seda", "soie", "seide", "seda"),
    "linen": ("lino", "lin", "leinen", "linho"),
    "wooden": ("madera", "bois", "holz", "madeira"),
    "steel": ("acero", "acier", "stahl", "aço"),
    "non-stick": ("antiadherente", "antiadhésive|antiadhésif", "antihaft", "antiaderente"),
    "waterproof": ("impermeable", "imperméable|étanche", "wasserdicht", "impermeável|à prova d'água"),
    # colours
    "red": ("rojo|roja|rojos|rojas", "rouge|rouges", "rot|rote|roten|roter", "vermelho|vermelha|vermelhos|vermelhas"),
    "blue": ("azul|azules", "bleu|bleue|bleus|bleues", "blau|blaue|blauen|blauer", "azul|azuis"),
    "green": ("verde|verdes", "vert|verte|verts|vertes", "grün|grüne|grünen|grüner", "verde|verdes"),
    "black": ("negro|negra|negros|negras", "noir|noire|noirs|noires", "schwarz|schwarze|schwarzen|schwarzer",
              "preto|preta|pretos|pretas"),
    "white": ("blanco|blanca|blancos|blancas", "blanc|blanche|blancs|blanches", "weiß|weiße|weißen|weißer",
              "branco|branca|brancos|brancas"),
    "yellow": ("amarillo|amarilla", "jaune|jaunes", "gelb|gelbe|gelben", "amarelo|amarela"),
    "pink": ("rosa|rosado|rosada", "rose|roses", "rosa|pink", "rosa"),
    "grey": ("gris|grises", "gris|grise", "grau|graue|grauen", "cinza"),
    "brown": ("marrón|café", "marron|brun|brune", "braun|braune|braunen", "marrom"),
    "golden": ("dorado|dorada", "doré|dorée", "golden|goldene", "dourado|dourada"),
    # qualifiers and people
    "women": ("mujer|mujeres|dama|señora", "femme|femmes", "damen|frauen", "mulher|mulheres|feminino|feminina"),
    "men": ("hombre|hombres|caballero", "homme|hommes", "herren|männer", "homem|homens|masculino|masculina"),
    "children": ("niños|niñas|infantil", "enfants|enfant", "kinder", "crianças|infantil"),
    "girl": ("niña", "fille|fillette", "mädchen", "menina"),
    "boy": ("niño", "garçon", "junge", "menino"),
    "cheap": ("barato|barata|baratos|baratas|económico", "pas cher|bon marché", "günstig|billig", "barato|barata|baratos|baratas"),
    "luxury": ("lujo", "luxe", "luxus", "luxo"),
    "summer": ("verano", "été", "sommer", "verão"),
    "winter": ("invierno", "hiver", "winter", "inverno"),
    "travel": ("viaje|viajar", "voyage|voyager", "reise|reisen", "viagem|viajar"),
    "party": ("fiesta", "fête|soirée", "party|feier", "festa"),
    "wedding": ("boda", "mariage", "hochzeit", "casamento"),
    "birthday": ("cumpleaños", "anniversaire", "geburtstag", "aniversário"),
    "light (weight)": ("ligero|ligera", "léger|légère", "leicht|leichte|leichten", "leve"),
}
_LANGUAGES: Final = ("es", "fr", "de", "pt")
# How an accented letter may be typed (or not) by a shopper; shared with kb.query's vocabulary.
ACCENTS: Final = {
    "á": "[aá]", "à": "[aà]", "â": "[aâ]", "ã": "[aã]", "ä": "(?:ä|ae|a)", "é": "[eé]", "è": "[eè]", "ê": "[eê]",
    "ë": "[eë]", "í": "[ií]", "î": "[iî]", "ï": "[iï]", "ó": "[oó]", "ô": "[oô]", "õ": "[oõ]", "ö": "(?:ö|oe|o)",
    "ú": "[uú]", "û": "[uû]", "ü": "(?:ü|ue|u)", "ñ": "[nñ]", "ç": "[cç]", "ß": "(?:ß|ss)", "œ": "(?:œ|oe)",
}


def phrase_pattern(phrase: str) -> str:
    """The regular expression of a lower-case phrase: accents optional, spaces and hyphens loose, apostrophes optional."""
    out = []
    for ch in phrase:
        if ch in ACCENTS:
            out.append(ACCENTS[ch])
        elif ch == " ":
            out.append(r"[\s\-]+")
        elif ch == "-":
            out.append(r"[\s\-]?")
        elif ch == "'":
            out.append("['’]?")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _pattern(form: str) -> str:
    return phrase_pattern(form) + r"(?:e?s)?"


def _english(term: str) -> str:
    return re.sub(r"\s*\(.*\)$", "", term)


@cache
def _matcher(language: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """One regex over every form of ``language`` (longest first) and the English term of each form."""
    column = _LANGUAGES.index(language)
    english_of: dict[str, str] = {}
    for term, forms in GLOSSARY.items():
        for form in forms[column].split("|"):
            english_of.setdefault(form, _english(term))
    ordered = sorted(english_of, key=len, reverse=True)
    alternatives = "|".join(f"(?P<t{i}>{_pattern(form)})" for i, form in enumerate(ordered))
    # German compounds end with their head noun: "Luxusuhr" is a watch, "Wanderschuhe" shoes
    start = r"(?<!\w)" if language != "de" else r"(?:(?<!\w)|(?<=\w)(?=\w{3}))"
    return re.compile(rf"{start}(?:{alternatives})(?!\w)", re.IGNORECASE), {f"t{i}": english_of[f] for i, f in enumerate(ordered)}


def translations(text: str, language: str | None) -> list[str]:
    """English terms for the glossary words found in ``text`` (in order, without repeats).

    ``language`` is es, fr, de or pt (a locale such as pt_BR works); English and
    unknown languages give []: the catalog is searched in the shopper's words.
    """
    code = (language or "").replace("-", "_").split("_")[0].casefold()
    if code not in _LANGUAGES:
        return []
    pattern, english_of = _matcher(code)
    found: list[str] = []
    normalized = unicodedata.normalize("NFC", text)
    present = set(re.findall(r"\w+", normalized.casefold()))
    for match in pattern.finditer(normalized):
        term = english_of[match.lastgroup or ""]
        if term not in found and not set(term.casefold().split()) <= present:  # "perfume" needs no translation
            found.append(term)
    return found


def glossary_terms(text: str, language: str | None) -> list[tuple[int, int, str]]:
    """Where glossary words occur in ``text``: ``(start, end, English term)``, in order, longest forms first.

    Like :func:`translations` but with positions, for callers that need to know
    which words a term covers (:mod:`kb.assortment` finds the head of a request).
    """
    code = (language or "").replace("-", "_").split("_")[0].casefold()
    if code not in _LANGUAGES:
        return []
    pattern, english_of = _matcher(code)
    normalized = unicodedata.normalize("NFC", text)
    return [(m.start(), m.end(), english_of[m.lastgroup or ""]) for m in pattern.finditer(normalized)]
