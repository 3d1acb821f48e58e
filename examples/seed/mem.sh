#!/bin/sh
random="$(dd if=/dev/urandom ibs=20000)"
