"""Drives the official syfthub-sdk 0.3.1 client, unchanged, against a running thub: the
my_endpoints and hub resources. Usage: python3 sdk_registry.py BASE_URL."""

import sys
import uuid

from syfthub_sdk import SyftHubClient
from syfthub_sdk.exceptions import AuthenticationError, NotFoundError, ValidationError
from syfthub_sdk.models import EndpointType, Visibility

BASE = sys.argv[1].rstrip("/")
PASSWORD = "Sdk-password-1"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def new_client(name):
    client = SyftHubClient(base_url=BASE)
    client.auth.register(username=name, email=f"{name}@example.com", password=PASSWORD, full_name=name)
    return client


suffix = uuid.uuid4().hex[:6]
alice_name, bob_name = f"alice{suffix}", f"bob{suffix}"
alice = new_client(alice_name)
bob = new_client(bob_name)

# my_endpoints: create (with tags, policies, connections), list, get, update, delete.
created = alice.my_endpoints.create(
    name="Image Classifier",
    type=EndpointType.MODEL,
    description="Labels photos",
    readme="# Classifier\n\nFinds cats.",
    tags=["vision", "cats"],
    policies=[{"type": "rate_limit", "config": {"per_minute": 60}}],
    connect=[{"type": "http", "config": {"url": "https://api.example.com"}}],
)
check(created.slug == "image-classifier", f"slug {created.slug}")
check(created.tags == ["vision", "cats"], f"tags {created.tags}")
check(created.policies[0].config == {"per_minute": 60}, "policy config")
check(created.user_id == alice.auth.me().id, "user_id")
private = alice.my_endpoints.create(name="Private Data", type=EndpointType.DATA_SOURCE, visibility=Visibility.PRIVATE)
agent = alice.my_endpoints.create(name="Helper Agent", type=EndpointType.AGENT)
check(agent.type == EndpointType.AGENT, "agent type")
try:
    alice.my_endpoints.create(name="Bad", type="model", version="v1")
    raise AssertionError("bad version accepted")
except ValidationError:
    pass

listed = list(alice.my_endpoints.list(page_size=2))
check({endpoint.slug for endpoint in listed} == {"image-classifier", "private-data", "helper-agent"}, f"list pages {[e.slug for e in listed]}")
check([endpoint.slug for endpoint in alice.my_endpoints.list(visibility=Visibility.PRIVATE)] == ["private-data"], "list by visibility")
check(alice.my_endpoints.get(f"{alice_name}/image-classifier").id == created.id, "get by path")
updated = alice.my_endpoints.update(f"{alice_name}/image-classifier", description="Labels photos of cats", version="1.1.0")
check(updated.description == "Labels photos of cats" and updated.version == "1.1.0", "update by slug")
alice.my_endpoints.delete(f"{alice_name}/helper-agent")
try:
    alice.my_endpoints.get(f"{alice_name}/helper-agent")
    raise AssertionError("deleted endpoint still there")
except NotFoundError:
    pass

# hub: browse, trending, get, search, star, is_starred, unstar.
public = [endpoint for endpoint in bob.hub.browse(page_size=1) if endpoint.owner_username == alice_name]
check([endpoint.slug for endpoint in public] == ["image-classifier"], f"browse {[e.slug for e in public]}")
check(public[0].path == f"{alice_name}/image-classifier", "path")
check(bob.hub.get(f"{alice_name}/image-classifier").description == "Labels photos of cats", "hub.get")
try:
    bob.hub.get(f"{alice_name}/private-data")
    raise AssertionError("private endpoint found by browsing")
except NotFoundError:
    pass
results = bob.hub.search("cats classifier")
check(results and results[0].slug == "image-classifier", f"search {[r.slug for r in results]}")
check(0 < results[0].relevance_score <= 1, f"score {results[0].relevance_score}")
check(bob.hub.search("zzzzunmatched") == [], "no results")

# The SDK resolves star targets among the caller's own endpoints.
alice.hub.star(f"{alice_name}/image-classifier")
check(alice.hub.is_starred(f"{alice_name}/image-classifier"), "is_starred")
trending = [endpoint for endpoint in bob.hub.trending(min_stars=1) if endpoint.owner_username == alice_name]
check([endpoint.stars_count for endpoint in trending] == [1], f"trending {trending}")
alice.hub.unstar(f"{alice_name}/image-classifier")
check(not alice.hub.is_starred(f"{alice_name}/image-classifier"), "unstarred")
try:
    SyftHubClient(base_url=BASE).hub.star(f"{alice_name}/image-classifier")
    raise AssertionError("anonymous star")
except AuthenticationError:
    pass

# sync: atomic replacement.
result = alice.my_endpoints.sync([
    {"name": "Model A", "type": "model", "visibility": "public"},
    {"name": "Data B", "type": "data_source", "visibility": "private"},
])
check(result.synced == 2 and result.deleted == 2, f"sync {result.synced}/{result.deleted}")
check({endpoint.slug for endpoint in alice.my_endpoints.list()} == {"model-a", "data-b"}, "after sync")

print("syfthub-sdk registry: all checks passed")
