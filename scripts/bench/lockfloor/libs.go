//go:build !bare

package main

// The libraries livedict's design names, linked for their start-up cost.
import (
	_ "github.com/charmbracelet/lipgloss"
	_ "github.com/google/shlex"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
)
