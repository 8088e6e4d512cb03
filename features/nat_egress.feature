Feature: NAT gateway source addresses seen by a vault firewall
  Power Platform's delegated subnets have no internet access unless a NAT gateway is attached
  to them; then their traffic to public endpoints leaves from the gateway's public IP, and
  that is the client address a vault firewall judges. In the nat-gateway landscape the prod
  westus subnet egresses through natgw-prod-westus (203.0.113.100), which kv-firewall's IP
  rule admits; the test westus subnet egresses through natgw-test-westus (203.0.113.101),
  which it does not; the public internet host is 203.0.113.10. A refusal is 403 Forbidden /
  ForbiddenByFirewall naming the client address (wording from public traces, see
  mocks/keyvault/src/error.rs).

  Background:
    Given the nat-gateway landscape is running
    And the app "nat-client" asks for a token for "https://vault.azure.net/.default"

  Scenario: The vault firewall admits the prod subnet through its NAT gateway's public IP
    When "nat-client" reads the secret "egress-check" of "kv-firewall" from host "pp-prod-westus"
    Then the secret's value is "seen-through-the-nat-gateway"

  Scenario: Another subnet's NAT gateway is refused, and the vault names that gateway's address
    When "nat-client" reads the secret "egress-check" of "kv-firewall" from host "pp-test-westus"
    Then the vault answers 403 with "ForbiddenByFirewall"
    And the vault's message names the client address "203.0.113.101"

  Scenario: The public internet is refused with its own address
    When "nat-client" reads the secret "egress-check" of "kv-firewall" from host "internet"
    Then the vault answers 403 with "ForbiddenByFirewall"
    And the vault's message names the client address "203.0.113.10"

  Scenario: A vault without a firewall lets the NAT gateway's traffic in, and RBAC decides
    When "nat-client" reads the secret "egress-check" of "kv-public" from host "pp-prod-westus"
    Then the vault answers 403 with "ForbiddenByRbac"

  Scenario: A delegated subnet without a NAT gateway has no internet egress to a public vault
    When "nat-client" reads the secret "egress-check" of "kv-public" from host "pp-prod-eastus"
    Then the request does not reach the vault
