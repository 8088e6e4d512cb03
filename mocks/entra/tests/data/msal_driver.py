"""Drives MSAL Python against a running mock Entra; prints every result as JSON.

Input (stdin, JSON): authority, client_id, secret, key_pem, cert_pem, thumbprint,
api_default, api_scope, spa_id, user, password, connector_scope, ropc (bool),
user_assertion (a user token for the connector, used when ROPC is not possible).

Authorities on a loopback address are not known to MSAL, so instance discovery is turned
off (`instance_discovery=False`); MSAL then fetches
`<authority>/v2.0/.well-known/openid-configuration` with the authority's port kept.
"""
import json
import sys

import msal

cfg = json.load(sys.stdin)
authority = cfg["authority"]
out = {}


def confidential(credential):
    return msal.ConfidentialClientApplication(
        cfg["client_id"], client_credential=credential, authority=authority,
        instance_discovery=False)


secret_app = confidential(cfg["secret"])
out["cc_secret"] = secret_app.acquire_token_for_client(scopes=[cfg["api_default"]])
# public_certificate without thumbprint: MSAL >= 1.35 signs PS256 with x5t#S256.
out["cc_cert_ps256"] = confidential(
    {"private_key": cfg["key_pem"], "public_certificate": cfg["cert_pem"]}
).acquire_token_for_client(scopes=[cfg["api_default"]])
# SHA-1 thumbprint: the legacy RS256 + x5t assertion.
out["cc_cert_rs256"] = confidential(
    {"private_key": cfg["key_pem"], "thumbprint": cfg["thumbprint"]}
).acquire_token_for_client(scopes=[cfg["api_default"]])

assertion = cfg.get("user_assertion")
if cfg["ropc"]:
    pca = msal.PublicClientApplication(
        cfg["spa_id"], authority=authority, instance_discovery=False)
    ropc = pca.acquire_token_by_username_password(
        cfg["user"], cfg["password"], scopes=[cfg["connector_scope"]])
    out["ropc"] = ropc
    accounts = pca.get_accounts(username=cfg["user"])
    out["accounts"] = [a["username"] for a in accounts]
    if accounts:
        out["refresh"] = pca.acquire_token_silent(
            [cfg["connector_scope"]], account=accounts[0], force_refresh=True)
    assertion = ropc.get("access_token", assertion)
else:
    out["refresh"] = secret_app.acquire_token_by_refresh_token(
        cfg["refresh_token"], scopes=[cfg["api_scope"]])

out["obo"] = secret_app.acquire_token_on_behalf_of(assertion, scopes=[cfg["api_scope"]])
out["msal_version"] = msal.__version__
print(json.dumps(out))
