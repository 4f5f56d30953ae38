*** Settings ***
Documentation     A faulty link between the board and the host: bit flips, dropped and
...               duplicated bytes, stalls and disconnects at seeded rates. Every frame that
...               arrives intact must be delivered exactly once, every lost frame and sample
...               must be counted, and the proxy's fault log must explain exactly which
...               frames were damaged. The seed is in each test's message; run again with
...               PICODAQ_FAULT_SEED=<seed> to get the same fault schedule.
Resource          resources/picodaq.resource
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board


*** Keywords ***
Stream Through Faults
    [Arguments]    ${spec}    ${rate}=16000    ${channels}=8    ${seed}=${None}
    Use Faulty Link    ${spec}    seed=${seed}
    Start Stream    rate=${rate}    channels=${channels}
    Enable Link Faults
    Keep Streaming    ${FAULT STREAM TIME}
    Stop Stream


*** Test Cases ***
Bit Flips Are Detected And Counted
    Stream Through Faults    bitflip=2e-5
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact

Dropped Bytes Are Detected And Counted
    Stream Through Faults    drop=2e-5
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact

Duplicated Bytes Are Detected And Counted
    Stream Through Faults    dup=2e-5
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact

Stalls Lose Nothing
    [Documentation]    A stalled link backs up into the board's ring; nothing is lost. The stream
    ...                goes on until the link has stalled at least twice, whatever the seed.
    Use Faulty Link    stall=4e-6,stall_ms=50-250
    Start Stream    rate=16000    channels=8
    Enable Link Faults
    Keep Streaming    ${FAULT STREAM TIME}
    Keep Streaming Until Faults    stall    2
    Stop Stream
    Link Faults Should Include    stall    2
    Loss Accounting Should Be Exact    expect_losses=False
    Stream Should Be Complete

Disconnects Are Survived And Every Loss Counted
    [Documentation]    The host's port vanishes and comes back; the host reconnects and counts
    ...                what it missed. The stream goes on until a disconnect has happened and the
    ...                host is back (seed fixed, the same schedule every run).
    Use Faulty Link    disconnect=1e-6,disconnect_s=0.3    seed=7
    Start Stream    rate=16000    channels=8
    Enable Link Faults
    Keep Streaming    ${FAULT STREAM TIME}
    Keep Streaming Until Faults    disconnect    1
    Keep Streaming Until Reconnected
    Keep Streaming    0.5 s
    Stop Stream
    Link Faults Should Include    disconnect    1
    Stream Should Have Reconnected
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact

Every Fault At Once At 16 kHz x 32 Channels
    Stream Through Faults    bitflip=1e-5,drop=1e-5,dup=1e-5,stall=1e-6,disconnect=3e-7,disconnect_s=0.3
    ...    rate=16000    channels=32
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact
