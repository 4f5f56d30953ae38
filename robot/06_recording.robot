*** Settings ***
Documentation     Recording formats, written by picodaq's own recording pipeline: what a stream
...               records to .npy, .csv and .bdf (BDF+, 24-bit) is exactly the ramp, and the raw
...               .tlv capture replays (through `picodaq replay`) to the same samples and counters.
Resource          resources/picodaq.resource
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board
Test Template     Recording Round Trip


*** Keywords ***
Recording Round Trip
    [Arguments]    ${rate}    ${channels}    ${fmt}    ${bdf}=True
    Skip If Board Cannot Stream    ${rate}    ${channels}    ${fmt}
    ${dir}=    Recording Directory
    ${files}=    Set Variable    ${dir}${/}rec.npy,${dir}${/}rec.csv,${dir}${/}rec.tlv
    IF    ${bdf}    VAR    ${files}    ${files},${dir}${/}rec.bdf
    Stream For    ${STREAM TIME}    rate=${rate}    channels=${channels}    fmt=${fmt}    record=${files}
    Stream Should Be Complete
    Recording Should Match Ramp    ${dir}${/}rec.npy
    Recording Should Match Ramp    ${dir}${/}rec.csv
    IF    ${bdf}    Recording Should Match Ramp    ${dir}${/}rec.bdf
    Replay Should Reproduce    ${dir}${/}rec.tlv    ${dir}${/}rec.npy


*** Test Cases ***                      RATE     CHANNELS    FMT      BDF
int16 at 1 kHz x 8 channels             1000     8           int16    True
int24 at 1 kHz x 8 channels             1000     8           int24    True
int32 at 250 Hz x 32 channels           250      32          int32    False
