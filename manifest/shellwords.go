package manifest

import (
	"errors"
	"strings"
)

// splitWords splits a command string into words the way a POSIX shell
// does before expansion: spaces, tabs and newlines (the default IFS)
// separate words, single quotes keep everything literally, double quotes
// keep everything but the escapes \\, \", \$, \` and backslash-newline, and
// a backslash outside quotes keeps the next character. Nothing is
// expanded: "$HOME" stays as written, since no shell runs and the program
// would otherwise see a different word than the user reads. Every
// character that matters is ASCII, so working on bytes keeps any other
// UTF-8 sequence intact.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		r := s[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case r == '\\':
			if i+1 == len(s) {
				return nil, errors.New("ends with a lone backslash")
			}
			i++
			if s[i] != '\n' {
				word.WriteByte(s[i])
				inWord = true
			}
		case r == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("has an unterminated single quote")
			}
			end += i + 1
			word.WriteString(s[i+1 : end])
			i, inWord = end, true
		case r == '"':
			end, err := doubleQuoted(s, i+1, &word)
			if err != nil {
				return nil, err
			}
			i, inWord = end, true
		default:
			word.WriteByte(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// doubleQuoted copies the inside of a double-quoted string starting at
// s[i] into word and returns the index of the closing quote.
func doubleQuoted(s string, i int, word *strings.Builder) (int, error) {
	for ; i < len(s); i++ {
		switch r := s[i]; r {
		case '"':
			return i, nil
		case '\\':
			if i+1 < len(s) && strings.IndexByte("\\\"$`\n", s[i+1]) >= 0 {
				i++
				if s[i] != '\n' {
					word.WriteByte(s[i])
				}
				continue
			}
			word.WriteByte(r)
		default:
			word.WriteByte(r)
		}
	}
	return 0, errors.New("has an unterminated double quote")
}
