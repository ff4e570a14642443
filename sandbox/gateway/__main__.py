from sandbox.gateway.server import main

main()
