ITEMS = [
    {"name": "tea", "price": 3},
    {"name": "coffee", "price": 4},
]
