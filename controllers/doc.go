// Package controllers holds one package per control loop (provisioning,
// disruption, interruption, pool status). Each is thin: it reads state,
// calls the solver and writes CAPI objects; no packing logic lives here.
package controllers
