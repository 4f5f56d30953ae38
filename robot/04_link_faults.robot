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
    [Documentation]    The stream runs at the highest rate up to ${TOP RATE} the board takes. The
    ...                spec's rates are per byte and written for 16 kHz x 8 int16: a slower
    ...                stream gets them scaled up, so each case sees as many faults per second.
    ...                The stream goes on past ${FAULT STREAM TIME} until a fault of each kind
    ...                in ``until`` has come (a condition: a board slowed by a loaded machine
    ...                gets its faults later, not none).
    [Arguments]    ${spec}    ${rate}=<=${TOP RATE}    ${channels}=8    ${seed}=${None}    ${until}=${EMPTY}
    ${channels}=    Channels For Case    ${channels}
    ${rate}=    Rate For Case    ${rate}    ${channels}
    ${scale}=    Evaluate    max(1.0, 16000 * 8 / (${rate} * ${channels}))
    Use Faulty Link    ${spec}    seed=${seed}    scale=${scale}
    Start Stream    rate=${rate}    channels=${channels}
    Enable Link Faults
    Keep Streaming    ${FAULT STREAM TIME}
    IF    $until    Keep Streaming Until Faults    ${until}
    Stop Stream


*** Test Cases ***
Bit Flips Are Detected And Counted
    Stream Through Faults    bitflip=2e-5    until=bitflip
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact

Dropped Bytes Are Detected And Counted
    Stream Through Faults    drop=2e-5    until=drop
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact

Duplicated Bytes Are Detected And Counted
    Stream Through Faults    dup=2e-5    until=dup
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact

Stalls Lose Nothing
    [Documentation]    A stalled link backs up into the board's ring; nothing is lost. The stream
    ...                goes on until the link has stalled, whatever the seed, and the fault log
    ...                must show it did.
    Stream Through Faults    stall=4e-6,stall_ms=50-250    until=stall
    Link Faults Should Include    stall
    Loss Accounting Should Be Exact    expect_losses=False
    Stream Should Be Complete

Disconnects Are Survived And Every Loss Counted
    [Documentation]    The host's port vanishes and comes back; the host reconnects and counts
    ...                what it missed. The seed is fixed, and the stream goes on until a
    ...                disconnect has happened.
    Stream Through Faults    disconnect=1e-6,disconnect_s=0.3    seed=7    until=disconnect
    Link Faults Should Include    disconnect
    Stream Should Have Reconnected
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact

Every Fault At Once With Up To 32 Channels
    [Documentation]    32 channels, or as many as the board has.
    Stream Through Faults    bitflip=1e-5,drop=1e-5,dup=1e-5,stall=1e-6,disconnect=3e-7,disconnect_s=0.3
    ...    channels=<=32    until=bitflip,drop,dup
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact
