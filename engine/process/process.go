// Package process holds what a Moonforge process asks of its operating system: how many files
// (connections included) it may hold open, and which requests stop it gracefully. Code that
// differs between platforms sits in small files selected by build tags (unix: Linux and macOS;
// windows), each with its own contract.
package process
