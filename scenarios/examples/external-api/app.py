"""A team's own backend, run by ppvnet as an external API (`implementation: {kind: command}`).

ppvnet starts it on the API's host with the environment it needs:
  PPVNET_BIND            address to listen on (host:port), the first of:
  PPVNET_BINDS           every face as label=host:port (`public`, or a private endpoint's name)
  PPVNET_TLS_CERT/KEY    the run's certificate for the API's host name and address
  PPVNET_TENANT_ID, PPVNET_AUTHORITY, PPVNET_CLIENT_ID, PPVNET_IDENTIFIER_URI
  PPVNET_CA_BUNDLE       the run's CA, to reach Entra over TLS
It answers GET /whoami with what it was given; a real backend would validate tokens against
PPVNET_AUTHORITY/<tenant>/v2.0/.well-known/openid-configuration.
"""
import http.server
import json
import os
import ssl
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    ingress = "public"

    def do_GET(self):
        if self.path != "/whoami":
            self.send_error(404)
            return
        body = json.dumps({
            "tenant": os.environ["PPVNET_TENANT_ID"],
            "client_id": os.environ["PPVNET_CLIENT_ID"],
            "authority": os.environ["PPVNET_AUTHORITY"],
            "peer": self.client_address[0],
            "ingress": self.ingress,
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(label, address):
    host, port = address.rsplit(":", 1)
    handler = type("Face", (Handler,), {"ingress": label})
    server = http.server.ThreadingHTTPServer((host, int(port)), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.environ["PPVNET_TLS_CERT"], os.environ["PPVNET_TLS_KEY"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


faces = [f.split("=", 1) for f in os.environ["PPVNET_BINDS"].split(",")]
for label, address in faces[1:]:
    threading.Thread(target=serve, args=(label, address), daemon=True).start()
serve(*faces[0])
