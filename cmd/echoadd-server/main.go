package main

import (
	"os"

	"echoadd/reference/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
