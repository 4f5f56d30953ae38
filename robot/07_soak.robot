*** Settings ***
Documentation     Soak: ten minutes of streaming, clean and through a mildly faulty link, with
...               every sample checked and every loss accounted. Tagged `soak`, which `make test`
...               and `make hil` exclude; run it with `make soak`.
Resource          resources/picodaq.resource
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board
Test Tags         soak
Test Timeout      15 min


*** Variables ***
${SOAK TIME}       10 min


*** Test Cases ***
Ten Minutes At 1 kHz x 8 Channels
    Stream For    ${SOAK TIME}    rate=1000    channels=8    fmt=int24
    Stream Should Be Complete

Ten Minutes Through A Faulty Link
    Use Faulty Link    bitflip=1e-6,drop=1e-6,dup=1e-6,stall=1e-7,disconnect=2e-8,disconnect_s=0.5
    Start Stream    rate=4000    channels=8
    Enable Link Faults
    Keep Streaming    ${SOAK TIME}
    Stop Stream
    Loss Accounting Should Be Exact
    Stream Should Be Bit Exact
