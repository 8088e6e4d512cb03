Feature: Landscape validation
  A landscape file describes a tenant, its networks, vaults, APIs and Power Platform
  environments. Before anything runs, ppvnet refuses a landscape that Azure or Power Platform
  would refuse, in Azure's own words, and points at the line of the offending item.
  Each broken landscape below differs from scenarios/examples/minimal.yaml in one place.

  Scenario: The seed architecture is valid
    Given the landscape file "contoso.yaml"
    When I validate it
    Then it is valid
    And it has 3 environments
    And it has 3 key-vaults
    And it has 4 vnets
    And it has 3 apis

  Scenario: The minimal example is valid
    Given the landscape file "examples/minimal.yaml"
    When I validate it
    Then it is valid
    And it has 1 environments

  Scenario: The command line accepts the seed architecture and prints its counts
    Given the landscape file "contoso.yaml"
    When I run ppvnet validate on it
    Then the command exits with code 0
    And it prints "valid landscape 'contoso'"
    And it prints "enterprise policies"

  Scenario: The command line refuses a broken landscape with the file, line and rule
    Given the landscape file "invalid/subnet-outside-vnet.yaml"
    When I run ppvnet validate on it
    Then the command exits with code 1
    And it prints "subnet-outside-vnet.yaml:22:26: NetcfgSubnetRangeOutsideVnet"

  Scenario: A resource refers to something that does not exist
    Given the landscape file "invalid/unknown-reference.yaml"
    When I validate it
    Then validation fails with rule "ResourceNotFound" at line 56
    And the message says "The Resource 'Microsoft.PowerPlatform/enterprisePolicies/ep-missing' under resource group 'rg-min' was not found."

  Scenario: A subnet lies outside its virtual network
    Given the landscape file "invalid/subnet-outside-vnet.yaml"
    When I validate it
    Then validation fails with rule "NetcfgSubnetRangeOutsideVnet" at line 22
    And the message says "its IP address range is outside the IP address range of virtual network 'vnet-west'"

  Scenario: Two subnets of one virtual network overlap
    Given the landscape file "invalid/overlapping-subnets.yaml"
    When I validate it
    Then validation fails with rule "NetcfgSubnetRangesOverlap" at line 22
    And the message says "overlaps with that of an existing subnet 'snet-pp'"

  Scenario: A subnet prefix has host bits set
    Given the landscape file "invalid/invalid-cidr.yaml"
    When I validate it
    Then validation fails with rule "InvalidCIDRNotation" at line 22
    And the message says "the address prefix should be 10.1.2.0/24"

  Scenario: A private endpoint is placed in the delegated subnet
    Given the landscape file "invalid/delegated-subnet-hosts-endpoint.yaml"
    When I validate it
    Then validation fails with rule "SubnetDelegatedCannotHostResources" at line 44
    And the message says "the delegated subnet can't be used for any other resources or delegated to other services"

  Scenario: One subnet is used by two enterprise policies
    Given the landscape file "invalid/subnet-in-two-policies.yaml"
    When I validate it
    Then validation fails with rule "SubnetAlreadyUsedByPolicy" at line 56
    And the message says "a subnet can't be reused across policies"

  Scenario: A policy in a two-region geo names only one virtual network
    Given the landscape file "invalid/second-vnet-missing.yaml"
    When I validate it
    Then validation fails with rule "SecondVirtualNetworkRequired" at line 49
    And the message says "A second virtual network ID and subnet name must be provided when the selected Power Platform region requires 2 delegated subnets."

  Scenario: The delegated virtual networks are not in a supported region pair
    Given the landscape file "invalid/regions-not-a-pair.yaml"
    When I validate it
    Then validation fails with rule "RegionsNotSupportedPair" at line 50
    And the message says "The regions westus and eastus2 of the provided vnets are not a supported pair for enterprise policy location unitedstates"

  Scenario: The two delegated subnets differ in size
    Given the landscape file "invalid/delegated-subnet-sizes-differ.yaml"
    When I validate it
    Then validation fails with rule "DelegatedSubnetSizeMismatch" at line 49
    And the message says "both subnets must have the same number of available IP addresses"

  Scenario: A policy uses a subnet that is not delegated
    Given the landscape file "invalid/subnet-not-delegated.yaml"
    When I validate it
    Then validation fails with rule "SubnetNotDelegated" at line 51
    And the message says "is not delegated to 'Microsoft.PowerPlatform/enterprisePolicies'"

  Scenario: Peered virtual networks have overlapping address spaces
    Given the landscape file "invalid/peering-overlapping-address-spaces.yaml"
    When I validate it
    Then validation fails with rule "VnetAddressSpacesOverlap" at line 29
    And the message says "cannot be peered because their address spaces overlap. Overlapping address prefixes: 10.1.0.0/16"

  Scenario: A virtual network is peered with itself
    Given the landscape file "invalid/peering-to-itself.yaml"
    When I validate it
    Then validation fails with rule "CannotPeerVirtualNetworkToItself" at line 30
    And the message says "Virtual network 'vnet-east' cannot be peered with itself."

  Scenario: An environment is in another geo than its enterprise policy
    Given the landscape file "invalid/environment-geo-mismatch.yaml"
    When I validate it
    Then validation fails with rule "EnvironmentLocationMismatch" at line 56
    And the message says "Environment location 'europe' does not match the enterprise policy location 'unitedstates'"

  Scenario: An enterprise policy names an unknown Power Platform region
    Given the landscape file "invalid/policy-location-unsupported.yaml"
    When I validate it
    Then validation fails with rule "LocationNotSupported" at line 48
    And the message says "The PowerPlatform region [atlantis] is not supported."

  Scenario: A Trial environment asks for vNet support
    Given the landscape file "invalid/unsupported-environment-type.yaml"
    When I validate it
    Then validation fails with rule "EnvironmentTypeNotSupported" at line 54
    And the message says "'Trial' is not supported"

  Scenario: A Secret variable holds a URL instead of a Key Vault reference
    Given the landscape file "invalid/malformed-keyvault-reference.yaml"
    When I validate it
    Then validation fails with rule "InvalidKeyVaultReference" at line 59
    And the message says "is not a Key Vault secret reference"

  Scenario: A Secret variable references a secret the vault does not hold
    Given the landscape file "invalid/secret-reference-missing-secret.yaml"
    When I validate it
    Then validation fails with rule "SecretNotFound" at line 59
    And the message says "A secret with (name/id) app-secret-typo was not found in this key vault."

  Scenario: A secret name breaks Key Vault's naming rules
    Given the landscape file "invalid/invalid-secret-name.yaml"
    When I validate it
    Then validation fails with rule "BadParameter" at line 41
    And the message says "starting with a letter and containing only 0-9, a-z, A-Z, and -"

  Scenario: A vault name breaks Key Vault's naming rules
    Given the landscape file "invalid/invalid-vault-name.yaml"
    When I validate it
    Then validation fails with rule "VaultNameNotValid" at line 36
    And the message says "The vault name 'kv--min' is invalid."

  Scenario: Two key vaults share a name
    Given the landscape file "invalid/duplicate-names.yaml"
    When I validate it
    Then validation fails with rule "DuplicateResourceName" at line 41
    And the message says "The key vault 'kv-min' is defined more than once"

  Scenario: An NSG rule has a priority out of range
    Given the landscape file "invalid/nsg-invalid-priority.yaml"
    When I validate it
    Then validation fails with rule "SecurityRuleInvalidPriority" at line 34
    And the message says "Security rule has invalid Priority. Value provided: 5000. Allowed values are from 100 to 4096."

  Scenario: A role assignment names an unknown role
    Given the landscape file "invalid/unknown-role.yaml"
    When I validate it
    Then validation fails with rule "RoleDefinitionDoesNotExist" at line 42
    And the message says "The specified role definition 'Key Vault Wizard' does not exist."

  Scenario: A NAT gateway's public IP is not one the emulated internet can route
    Given the landscape file "invalid/nat-gateway-public-ip.yaml"
    When I validate it
    Then validation fails with rule "InvalidPublicIpAddress" at line 29
    And the message says "The public IP '10.9.0.1' of NAT gateway 'natgw-west' is outside 203.0.113.100-203.0.113.255"

  Scenario: Two NAT gateways claim one public IP
    Given the landscape file "invalid/nat-gateway-public-ip-in-use.yaml"
    When I validate it
    Then validation fails with rule "PublicIPAddressInUse" at line 30
    And the message says "The public IP '203.0.113.100' of NAT gateway 'natgw-west-2' is already used by NAT gateway 'natgw-west'."

  Scenario: One NAT gateway serves subnets of two virtual networks
    Given the landscape file "invalid/nat-gateway-two-vnets.yaml"
    When I validate it
    Then validation fails with rule "NatGatewayCannotBeUsedBySubnetsBelongingToDifferentVirtualNetworks" at line 27
    And the message says "NAT Gateway cannot be configured on multiple virtual networks. NAT Gateway /subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/rg-min/providers/Microsoft.Network/natGateways/natgw-west is currently used on virtual network"

  Scenario: A connector's definition file is missing
    Given the landscape file "invalid/connector-file-missing.yaml"
    When I validate it
    Then validation fails with rule "ConnectorFileUnreadable" at line 63
    And the message says "cannot be read"

  Scenario: A connector's definition is OpenAPI 3
    Given the landscape file "invalid/connector-openapi3.yaml"
    When I validate it
    Then validation fails with rule "ConnectorDefinitionInvalid" at line 63
    And the message says "custom connectors support only OpenAPI 2.0"
    And it is the only error

  Scenario: A connector uses environment variables its environment does not define
    Given the landscape file "invalid/connector-variable-undefined.yaml"
    When I validate it
    Then validation fails with rule "EnvironmentVariableNotFound" at line 62
    And the message says "uses the environment variable 'cr_CasesApiHost', which the environment 'prod' does not define"
