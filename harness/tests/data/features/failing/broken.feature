Feature: Scenarios that must fail
  The `ppvnet test` tests run these to check the exit code and the failure evidence in the
  reports.

  Scenario: A wrong count <fails> & is reported
    Given the landscape file "contoso.yaml"
    When I validate it
    Then it has 99 vnets
    And it is valid

  Scenario: An undefined step fails the run
    Given the landscape file "contoso.yaml"
    Then the moon is made of cheese

  Scenario: A passing scenario next to failing ones
    Given the landscape file "contoso.yaml"
    When I validate it
    Then it is valid
