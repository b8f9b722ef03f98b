"""Drives the official syfthub-sdk 0.3.1 client, unchanged, against a running thub: auth, users,
api_tokens and satellite tokens; then verifies a satellite token with PyJWT using only the JWKS
URL. Usage: python3 sdk_accounts.py BASE_URL. Exits non-zero on the first failed check."""

import sys
import uuid

import jwt
from syfthub_sdk import SyftHubClient
from syfthub_sdk.exceptions import APIError, AuthenticationError, NotFoundError, ValidationError

BASE = sys.argv[1].rstrip("/")
PASSWORD = "Sdk-password-1"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


suffix = uuid.uuid4().hex[:8]
alice_name = f"alice{suffix}"
client = SyftHubClient(base_url=BASE)

# Registration and login.
result = client.auth.register(username=alice_name, email=f"{alice_name}@example.com", password=PASSWORD, full_name="Alice SDK")
check(result.user.username == alice_name, "register returns the user")
check(not result.requires_email_verification, "no email verification")
me = client.auth.me()
check(me.username == alice_name and me.email == f"{alice_name}@example.com", "me after register")

try:
    SyftHubClient(base_url=BASE).auth.register(username=alice_name, email=f"x{suffix}@example.com", password=PASSWORD, full_name="Dup")
    raise AssertionError("duplicate username accepted")
except APIError as error:
    check(error.status_code == 400, f"duplicate username is 400, got {error.status_code}")

try:
    SyftHubClient(base_url=BASE).auth.register(username=f"b{suffix}", email=f"b{suffix}@example.com", password="short", full_name="B")
    raise AssertionError("weak password accepted")
except ValidationError:
    pass

client = SyftHubClient(base_url=BASE)
user = client.auth.login(username=alice_name, password=PASSWORD)
check(user.username == alice_name, "login by username")
by_email = SyftHubClient(base_url=BASE)
check(by_email.auth.login(username=f"{alice_name}@example.com", password=PASSWORD).id == user.id, "login by email")
try:
    SyftHubClient(base_url=BASE).auth.login(username=alice_name, password="wrong-password-1")
    raise AssertionError("wrong password accepted")
except AuthenticationError:
    pass

# Users.
check(not client.users.check_username(alice_name), "own username is taken")
check(client.users.check_username(f"free{suffix}"), "free username is available")
check(not client.users.check_email(f"{alice_name}@example.com"), "own email is taken")
updated = client.users.update(full_name="Alice Updated", avatar_url="https://img.example.com/a.png", domain="api.example.com")
check(updated.full_name == "Alice Updated", "users.update")

# Refresh, explicitly.
client.auth.refresh()
check(client.auth.me().id == user.id, "me after refresh")

# Satellite tokens: an allow-listed service and a username (SDK 0.3.1 meaning), verified with
# PyJWT from nothing but the JWKS URL.
service_token = client.auth.get_satellite_token("syftai-space")
check(service_token.expires_in == 60, "satellite lifetime")
signing_key = jwt.PyJWKClient(f"{BASE}/.well-known/jwks.json").get_signing_key_from_jwt(service_token.target_token)
claims = jwt.decode(
    service_token.target_token,
    signing_key.key,
    algorithms=["RS256"],
    audience="syftai-space",
    issuer="https://hub.syft.com",
)
check(claims["sub"] == str(user.id) and claims["role"] == "user", f"satellite claims {claims}")
check(claims["exp"] - claims["iat"] == 60, "exp - iat == 60")
bob_name = f"bob{suffix}"
SyftHubClient(base_url=BASE).auth.register(username=bob_name, email=f"{bob_name}@example.com", password=PASSWORD, full_name="Bob")
for_bob = client.auth.get_satellite_token(bob_name)
check(jwt.decode(for_bob.target_token, signing_key.key, algorithms=["RS256"], audience=bob_name, issuer="https://hub.syft.com")["sub"] == str(user.id), "username audience")
tokens = client.auth.get_satellite_tokens(["syftai-space", bob_name, "no-such-service"])
check(set(tokens) == {"syftai-space", bob_name}, f"parallel satellite tokens drop failures: {sorted(tokens)}")

# API tokens.
created = client.api_tokens.create(name="CI pipeline", scopes=["read", "write"])
check(created.token.startswith("syft_pat_"), "token prefix")
listed = client.api_tokens.list()
check(listed.total == 1 and listed.tokens[0].id == created.id, "api_tokens.list")
check(client.api_tokens.get(created.id).name == "CI pipeline", "api_tokens.get")
check(client.api_tokens.update(created.id, name="Deploys").name == "Deploys", "api_tokens.update")
with_token = SyftHubClient(base_url=BASE, api_token=created.token)
check(with_token.auth.me().id == user.id, "API token as Bearer")
client.api_tokens.revoke(created.id)
check(client.api_tokens.list(include_inactive=True).total == 1, "revoked token listed with include_inactive")
check(client.api_tokens.list().total == 0, "revoked token not listed")
try:
    with_token.auth.me()
    raise AssertionError("revoked API token still works")
except AuthenticationError:
    pass
try:
    client.api_tokens.get(created.id + 1000)
    raise AssertionError("unknown token found")
except NotFoundError:
    pass

# Password change, then logout.
client.auth.change_password(current_password=PASSWORD, new_password="Sdk-password-2")
check(SyftHubClient(base_url=BASE).auth.login(username=alice_name, password="Sdk-password-2").id == user.id, "new password")
try:
    client.auth.change_password(current_password="wrong-password-9", new_password="Sdk-password-3")
    raise AssertionError("wrong current password accepted")
except APIError as error:
    check(error.status_code == 400, "wrong current password is 400")
client.auth.logout()
try:
    client.auth.me()
    raise AssertionError("still logged in after logout")
except AuthenticationError:
    pass

print("syfthub-sdk accounts: all checks passed")
