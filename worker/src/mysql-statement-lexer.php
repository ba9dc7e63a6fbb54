<?php
/**
 * Blueprints' runSql step cuts its SQL into statements with the SQLite
 * integration's WP_MySQL_Lexer, which integrations before 2.2 (the one
 * @wp-playground/wordpress-builds 0.9.19 ships is 2.1.11) do not have.
 * This stands in for it, only when it is missing (worker/src/site.rs):
 * it knows quotes, comments and semicolons, which is all the step asks
 * of it, and nothing of MySQL's grammar.
 */
final class WP_MySQL_Lexer
{
	const WHITESPACE = 1;
	const COMMENT = 2;
	const MYSQL_COMMENT_START = 3;
	const MYSQL_COMMENT_END = 4;
	const SEMICOLON_SYMBOL = 5;
	const EOF = 6;
	/** Anything else: words, numbers, operators, quoted strings, `/*! ... *\/`. */
	const TEXT = 7;

	private $sql;
	private $at = 0;
	private $token = null;

	public function __construct($sql)
	{
		$this->sql = (string) $sql;
	}

	/** Moves to the next token; false at the end of the input. */
	public function next_token()
	{
		$sql = $this->sql;
		$length = strlen($sql);
		$start = $this->at;
		if ($start >= $length) {
			$this->token = null;
			return false;
		}
		$c = $sql[$start];
		$next = $start + 1 < $length ? $sql[$start + 1] : '';
		if (strpos(" \t\r\n\f\v", $c) !== false) {
			$id = self::WHITESPACE;
			$end = $start + strspn($sql, " \t\r\n\f\v", $start);
		} elseif ($c === ';') {
			$id = self::SEMICOLON_SYMBOL;
			$end = $start + 1;
		} elseif ($c === '#' || ($c === '-' && $next === '-' && ($start + 2 >= $length || strpos(" \t\r\n\f\v", $sql[$start + 2]) !== false))) {
			// To the end of the line (MySQL wants a space after "--").
			$id = self::COMMENT;
			$newline = strpos($sql, "\n", $start);
			$end = $newline === false ? $length : $newline + 1;
		} elseif ($c === '/' && $next === '*') {
			// "/*!...*/" is SQL MySQL runs; "/*...*/" is a comment. Unclosed: to the end.
			$id = $start + 2 < $length && $sql[$start + 2] === '!' ? self::TEXT : self::COMMENT;
			$close = strpos($sql, '*/', $start + 2);
			$end = $close === false ? $length : $close + 2;
		} elseif ($c === "'" || $c === '"' || $c === '`') {
			$id = self::TEXT;
			$end = self::quoted_end($sql, $start);
		} else {
			$id = self::TEXT;
			$end = $start + max(1, strcspn($sql, " \t\r\n\f\v;'\"`#-/", $start));
		}
		$this->at = $end;
		$this->token = (object) ['id' => $id, 'start' => $start, 'length' => $end - $start];
		return true;
	}

	/** The current token: `id`, `start` and `length` (bytes). */
	public function get_token()
	{
		return $this->token;
	}

	/** Where the string opened at `$start` ends: past its closing quote, or
	 *  at the end of the input if it is not closed yet (the caller then
	 *  waits for more). A doubled quote or (outside backticks) a backslash
	 *  escapes. */
	private static function quoted_end($sql, $start)
	{
		$quote = $sql[$start];
		$length = strlen($sql);
		$at = $start + 1;
		while ($at < $length) {
			$c = $sql[$at];
			if ($c === '\\' && $quote !== '`') {
				$at += 2;
			} elseif ($c === $quote) {
				if ($at + 1 < $length && $sql[$at + 1] === $quote) {
					$at += 2;
				} else {
					return $at + 1;
				}
			} else {
				$at++;
			}
		}
		return $length;
	}
}
