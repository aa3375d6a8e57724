"""A FastAPI route as FastAPI users write it: the "fastapi" workload of
`bench/run asgi`.

GET /items/{item_id} takes a typed path parameter and returns a Pydantic
model, declared as the return type: FastAPI validates the path parameter,
then validates and serialises the model through the response model it
derives from the annotation. `async def`, as in FastAPI's tutorial (a plain
`def` would run in a thread pool).

    curl http://127.0.0.1:8000/items/42
    {"id":42,"name":"Widget","price":9.99,"tags":["tools","hardware"],"in_stock":true}
"""

from fastapi import FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str] = []
    in_stock: bool = True


app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> Item:
    return Item(id=item_id, name="Widget", price=9.99, tags=["tools", "hardware"])
