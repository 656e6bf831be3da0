// The name (or model glob) of an object being made: fixed once it exists,
// checked once the form is submitted, and showing the "already exists"
// answer of a create-only save until the name is changed.
import { TextInput } from '@mantine/core';
import { nameError } from '../validate';

export function NameField(props: {
  label: string;
  /** What the "… is required" error calls it. */
  what?: string;
  /** The object exists: its name cannot change. */
  fixed: boolean;
  description?: string;
  value: string;
  submitted: boolean;
  /** The save's "name taken" message, cleared when the name changes. */
  taken: string | null;
  onChange: (value: string) => void;
  clearTaken: () => void;
}) {
  const { label, what, fixed, description, value, submitted, taken, onChange, clearTaken } = props;
  return (
    <TextInput
      label={label}
      required
      disabled={fixed}
      description={description}
      value={value}
      error={(!fixed && submitted ? nameError(value, what) : null) ?? taken}
      onChange={(e) => {
        onChange(e.currentTarget.value);
        clearTaken();
      }}
    />
  );
}
