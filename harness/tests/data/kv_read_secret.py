"""An unmodified Azure SDK program: reads one Key Vault secret by the vault's real URL.

Usage: kv_read_secret.py TENANT CLIENT_ID CLIENT_SECRET VAULT SECRET
The authority comes from AZURE_AUTHORITY_HOST and the CA from SSL_CERT_FILE/REQUESTS_CA_BUNDLE,
as `ppvnet exec` sets them. Prints the secret's value, or "<status> <body>" and exits 3.
"""
import sys

from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

tenant, client_id, client_secret, vault, name = sys.argv[1:6]
credential = ClientSecretCredential(tenant, client_id, client_secret)
client = SecretClient(f"https://{vault}.vault.azure.net/", credential)
try:
    print(client.get_secret(name).value)
except HttpResponseError as e:
    print(f"{e.status_code} {e.response.text() if e.response is not None else e}")
    sys.exit(3)
