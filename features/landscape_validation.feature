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

  Scenario: An environment is active in a region outside its geo
    Given the landscape file "invalid/active-region-outside-geo.yaml"
    When I validate it
    Then validation fails with rule "ActiveRegionNotInGeo" at line 57
    And the message says "Environment 'prod' in geo 'unitedstates' cannot be active in region 'westeurope'"

  Scenario: An environment with vNet support is not a Managed Environment
    Given the landscape file "invalid/environment-not-managed.yaml"
    When I validate it
    Then validation fails with rule "EnvironmentNotManaged" at line 56
    And the message says "Environment 'prod' must be a Managed Environment to use Virtual Network support."

  Scenario: A vault access policy grants a permission that does not exist
    Given the landscape file "invalid/access-policy-permission.yaml"
    When I validate it
    Then validation fails with rule "InvalidAccessPolicyPermission" at line 41
    And the message says "'read' is not a secret permission"

  Scenario: An app registration asks for an access token version that does not exist
    Given the landscape file "invalid/access-token-version.yaml"
    When I validate it
    Then validation fails with rule "InvalidAccessTokenVersion" at line 13
    And the message says "requestedAccessTokenVersion must be null, 1 or 2, not 3."

  Scenario: A virtual network's address space is not a valid prefix
    Given the landscape file "invalid/vnet-address-space-format.yaml"
    When I validate it
    Then validation fails with rule "InvalidAddressPrefixFormat" at line 25
    And the message says "Address prefix 10.2.0.0/33 does not have a valid format."

  Scenario: An external API has no command to run
    Given the landscape file "invalid/api-command-empty.yaml"
    When I validate it
    Then validation fails with rule "InvalidCommand" at line 44
    And the message says "An external API needs a command to run (argv is empty)."

  Scenario: Two container APIs listen on the same port
    Given the landscape file "invalid/container-api-port-taken.yaml"
    When I validate it
    Then validation fails with rule "InvalidCommand" at line 46
    And the message says "Port 8080 cannot be this container API's: API 'cases-api-min' listens on it too, and container APIs share the internet host's network."

  Scenario: A container host names no image
    Given the landscape file "invalid/container-host-without-image.yaml"
    When I validate it
    Then validation fails with rule "InvalidHost" at line 46
    And the message says "Host 'team-client' is a container: give the image it runs (image: my-client:dev)."

  Scenario: An app's client id is not a GUID
    Given the landscape file "invalid/invalid-guid.yaml"
    When I validate it
    Then validation fails with rule "InvalidGuid" at line 11
    And the message says "The application (client) id 'pipeline-client-id' is not a valid GUID."

  Scenario: A host names a virtual network but no subnet
    Given the landscape file "invalid/host-vnet-without-subnet.yaml"
    When I validate it
    Then validation fails with rule "InvalidHost" at line 46
    And the message says "Host 'jumpbox' must give both vnet and subnet, or neither (public internet)."

  Scenario: A vault firewall rule is not an address
    Given the landscape file "invalid/vault-ip-rule.yaml"
    When I validate it
    Then validation fails with rule "InvalidIpRule" at line 39
    And the message says "The IP rule '203.0.113.300' is not an IPv4 address or CIDR range."

  Scenario: An enterprise policy has an unknown kind
    Given the landscape file "invalid/policy-kind-unknown.yaml"
    When I validate it
    Then validation fails with rule "InvalidPolicyKind" at line 52
    And the message says "The enterprise policy kind 'CustomerManagedKey' is not one of NetworkInjection, Encryption, Identity, Lockbox, PrivateEndpoint."

  Scenario: An environment variable's schema name has no publisher prefix
    Given the landscape file "invalid/variable-schema-name.yaml"
    When I validate it
    Then validation fails with rule "InvalidSchemaName" at line 59
    And the message says "The schema name 'AppSecret' must carry a publisher prefix (prefix_Name)"

  Scenario: A role assignment is scoped to the resource group
    Given the landscape file "invalid/role-assignment-scope.yaml"
    When I validate it
    Then validation fails with rule "InvalidScope" at line 42
    And the message says "is not valid for a role assignment in this landscape; expected /subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/rg-min/providers/Microsoft.KeyVault/vaults/{vault}[/secrets/{name}]."

  Scenario: A subnet is delegated to a service name without its resource provider
    Given the landscape file "invalid/delegation-service-name.yaml"
    When I validate it
    Then validation fails with rule "InvalidServiceNameOnDelegation" at line 23
    And the message says "Delegation service name 'serverFarms' is not valid"

  Scenario: A vault keeps deleted secrets for too short a time
    Given the landscape file "invalid/soft-delete-retention.yaml"
    When I validate it
    Then validation fails with rule "InvalidSoftDeleteRetentionDays" at line 39
    And the message says "The soft delete retention period must be between 7 and 90 days, not 3."

  Scenario: A user's principal name is outside the tenant's domain
    Given the landscape file "invalid/user-principal-name-domain.yaml"
    When I validate it
    Then validation fails with rule "InvalidUserPrincipalName" at line 10
    And the message says "The user principal name 'alice@contoso.com' must be name@fabrikam.onmicrosoft.com"

  Scenario: A Number environment variable holds text
    Given the landscape file "invalid/variable-number-value.yaml"
    When I validate it
    Then validation fails with rule "InvalidVariableValue" at line 59
    And the message says "'three' is not a Number."

  Scenario: A vault is in a region the landscape does not have
    Given the landscape file "invalid/vault-region-unknown.yaml"
    When I validate it
    Then validation fails with rule "LocationNotAvailableForResourceType" at line 37
    And the message says "The provided location 'westeurope' is not one of the landscape's regions."

  Scenario: A subnet uses a NAT gateway of another region
    Given the landscape file "invalid/nat-gateway-other-region.yaml"
    When I validate it
    Then validation fails with rule "NatGatewayAndSubnetInDifferentRegions" at line 21
    And the message says "NAT gateway 'natgw-east' in region 'eastus' cannot be used by subnet 'snet-pp' of virtual network 'vnet-west' in region 'westus'."

  Scenario: An environment's enterprise policy is not a NetworkInjection policy
    Given the landscape file "invalid/policy-not-network-injection.yaml"
    When I validate it
    Then validation fails with rule "PolicyNotNetworkInjection" at line 56
    And the message says "The specified policy is not a Subnet Injection (NetworkInjection) policy"

  Scenario: A role assignment names a principal the tenant does not have
    Given the landscape file "invalid/principal-not-found.yaml"
    When I validate it
    Then validation fails with rule "PrincipalNotFound" at line 42
    And the message says "Principal 'deploy-bot' does not exist in the directory 0b6f8c8e-7a51-4d0e-9a43-3b1f2f5d9c11."

  Scenario: A private endpoint's static address lies outside its subnet
    Given the landscape file "invalid/private-endpoint-address.yaml"
    When I validate it
    Then validation fails with rule "PrivateIPAddressNotInSubnet" at line 44
    And the message says "Private static IP address 10.1.3.4 does not belong to the range of subnet prefix 10.1.2.0/24 or is reserved by Azure."

  Scenario: Two inbound NSG rules share a priority
    Given the landscape file "invalid/nsg-rule-conflict.yaml"
    When I validate it
    Then validation fails with rule "SecurityRuleConflict" at line 35
    And the message says "Security rule DenyInternetHttps conflicts with rule AllowVnetHttps. Rules cannot have the same Priority and Direction."
    And it is the only error

  Scenario: An NSG rule names a service tag that does not exist
    Given the landscape file "invalid/nsg-invalid-address-prefix.yaml"
    When I validate it
    Then validation fails with rule "SecurityRuleInvalidAddressPrefix" at line 34
    And the message says "Security rule AllowVnetHttps has invalid Address prefix. Value provided: VirtualNetworks"
    And it is the only error

  Scenario: An NSG rule's port range is not a number
    Given the landscape file "invalid/nsg-invalid-port-range.yaml"
    When I validate it
    Then validation fails with rule "SecurityRuleInvalidPortRange" at line 34
    And the message says "Security rule AllowVnetHttps has invalid Port range. Value provided: https. Value should be an integer OR integer range with '-' delimiter. Valid range 0-65535."
    And it is the only error

  Scenario: An NSG rule names a protocol Azure does not filter on
    Given the landscape file "invalid/nsg-invalid-protocol.yaml"
    When I validate it
    Then validation fails with rule "SecurityRuleInvalidProtocol" at line 34
    And the message says "Security rule AllowVnetHttps has invalid Protocol 'Http'. Allowed values are *, Tcp, Udp, Icmp, Esp, Ah."
    And it is the only error

  Scenario: A NetworkInjection policy in a two-region geo names three subnets
    Given the landscape file "invalid/policy-three-vnets.yaml"
    When I validate it
    Then validation fails with rule "TooManyVirtualNetworks" at line 50
    And the message says "A NetworkInjection policy takes exactly two virtual networks in a two-region geo."

  # Schema errors: all of them in one run, with the nearest name, and together with the rules.
  Scenario: Misspelt fields and values are all reported with a suggestion, rules included
    Given the landscape file "invalid/schema-misspelt-fields.yaml"
    When I validate it
    Then validation fails with rule "InvalidValue" at line 35
    And the message says "'Alow' is not a valid value; did you mean 'Allow'?"
    And validation fails with rule "UnknownField" at line 39
    And the message says "unknown field 'publicNetworAccess'; did you mean 'publicNetworkAccess'?"
    And validation fails with rule "VaultNameNotValid" at line 37

  Scenario: A required field is missing
    Given the landscape file "invalid/schema-missing-field.yaml"
    When I validate it
    Then validation fails with rule "MissingField" at line 36
    And the message says "the field 'region' is required"
    And it is the only error

  Scenario: A value has the wrong type
    Given the landscape file "invalid/schema-wrong-type.yaml"
    When I validate it
    Then validation fails with rule "InvalidType" at line 38
    And the message says "invalid type: string"
    And the message says "expected u32"
    And it is the only error

  Scenario: The command line says the location once and suggests the nearest field
    Given the landscape file "invalid/schema-misspelt-fields.yaml"
    When I run ppvnet validate on it
    Then the command exits with code 1
    And it prints "schema-misspelt-fields.yaml:39:5: UnknownField (keyVaults[0].publicNetworAccess): unknown field 'publicNetworAccess'; did you mean 'publicNetworkAccess'?"

  Scenario: A stubbed API's mappings file does not exist
    Given the landscape file "invalid/stub-mappings-missing.yaml"
    When I validate it
    Then validation fails with rule "StubMappingsInvalid" at line 65
    And the message says "The stub mappings file 'stubs/missing.yaml' cannot be used"
    And it is the only error
