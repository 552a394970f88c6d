"""The demo catalog `msashop up` seeds once: 32 products in 5 categories, each with stock."""

from __future__ import annotations

from decimal import Decimal

_ITEMS = {
    "electronics": [
        ("EL-HEADPH", "Wireless Headphones", "Over-ear, noise cancelling, 30 h battery", "129.00"),
        ("EL-KEYBRD", "Mechanical Keyboard", "Tenkeyless, hot-swappable switches", "89.50"),
        ("EL-MOUSE", "Ergonomic Mouse", "Vertical grip, six buttons", "39.99"),
        ("EL-MONITR", "27-inch Monitor", "1440p IPS panel, 144 Hz", "299.00"),
        ("EL-WEBCAM", "HD Webcam", "1080p, dual microphones", "59.00"),
        ("EL-SPEAKR", "Bluetooth Speaker", "Waterproof, 12 h battery", "49.90"),
        ("EL-CHARGR", "USB-C Charger", "65 W, two ports", "34.00"),
    ],
    "books": [
        ("BK-MSA", "Building Microservices", "Designing fine-grained systems", "45.00"),
        ("BK-DDIA", "Designing Data-Intensive Applications", "Reliable, scalable systems", "52.00"),
        ("BK-REL", "Release It!", "Design and deploy production-ready software", "41.00"),
        ("BK-DDD", "Domain-Driven Design", "Tackling complexity in software", "58.00"),
        ("BK-EIP", "Enterprise Integration Patterns", "Messaging solutions", "61.00"),
        ("BK-SRE", "Site Reliability Engineering", "How Google runs production systems", "39.00"),
    ],
    "home": [
        ("HM-KETTLE", "Electric Kettle", "1.7 l, temperature control", "44.00"),
        ("HM-GRINDR", "Coffee Grinder", "Conical burr, 40 settings", "99.00"),
        ("HM-LAMP", "Desk Lamp", "Dimmable LED with USB port", "29.90"),
        ("HM-PLANT", "Plant Pot Set", "Three ceramic pots", "24.50"),
        ("HM-BLANKT", "Wool Blanket", "Merino, 150x200 cm", "79.00"),
        ("HM-KNIFE", "Chef's Knife", "20 cm, stainless steel", "64.00"),
    ],
    "sports": [
        ("SP-YOGA", "Yoga Mat", "6 mm, non-slip", "25.00"),
        ("SP-BOTTLE", "Insulated Bottle", "750 ml, keeps cold 24 h", "19.90"),
        ("SP-SHOES", "Running Shoes", "Lightweight trainers", "110.00"),
        ("SP-BANDS", "Resistance Bands", "Set of five", "17.50"),
        ("SP-ROPE", "Jump Rope", "Adjustable steel cable", "12.00"),
        ("SP-BAG", "Gym Bag", "40 l with shoe compartment", "45.00"),
    ],
    "toys": [
        ("TY-BLOCKS", "Building Blocks", "500 pieces", "34.99"),
        ("TY-PUZZLE", "Jigsaw Puzzle", "1000 pieces, world map", "18.00"),
        ("TY-ROBOT", "Coding Robot", "Programmable robot for kids", "79.00"),
        ("TY-CHESS", "Wooden Chess Set", "Folding board", "39.00"),
        ("TY-KITE", "Stunt Kite", "Dual line", "27.00"),
        ("TY-CARDS", "Card Game", "Party game for 3-8 players", "14.50"),
        ("TY-TRAIN", "Train Set", "Wooden tracks and engine", "49.00"),
    ],
}

CATALOG: list[dict[str, object]] = [
    {
        "sku": sku,
        "name": name,
        "description": description,
        "category": category,
        "price": Decimal(price),
        "initial_stock": 100 + 10 * (index % 5),
    }
    for category, items in _ITEMS.items()
    for index, (sku, name, description, price) in enumerate(items)
]
