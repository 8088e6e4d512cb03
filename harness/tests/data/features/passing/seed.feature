@validation
Feature: The seed landscape
  Quick scenarios (no landscape starts) that the `ppvnet test` tests run.

  @smoke
  Scenario: The seed landscape is valid
    Given the landscape file "contoso.yaml"
    When I validate it
    Then it is valid

  Scenario: The seed landscape has four vNets
    Given the landscape file "contoso.yaml"
    When I validate it
    Then it has 4 vnets

  Scenario Outline: The seed landscape counts <what>
    Given the landscape file "contoso.yaml"
    When I validate it
    Then it has <count> <what>

    @apis
    Examples:
      | count | what  |
      | 3     | apis  |

    @vaults
    Examples:
      | count | what       |
      | 3     | key-vaults |
