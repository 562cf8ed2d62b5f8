import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'examples/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs'] },
        tsconfigRootDir: import.meta.dirname
      }
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error'
    }
  },
  // Layers: registry/, cache/, nix/, image/, sbom/, signing/ and the small shared modules beside them sit
  // below the stages, the pipelines and main.ts, and never reach up into them.
  {
    files: [
      'src/registry/**',
      'src/cache/**',
      'src/nix/**',
      'src/image/**',
      'src/sbom/**',
      'src/signing/**',
      'src/errors.ts',
      'src/exec.ts',
      'src/report.ts',
      'src/state.ts',
      'src/temp.ts',
      'src/tree.ts'
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/stages/**', '**/pipeline/**', '**/main.js', '**/post.js', '**/inputs.js'],
              message: 'a lower layer must not import a stage, a pipeline, main, post or inputs'
            }
          ]
        }
      ]
    }
  },
  {
    // inputs.ts reads and checks the inputs before anything runs: it uses the lower layers only.
    files: ['src/inputs.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/stages/**', '**/pipeline/**', '**/main.js', '**/post.js'],
              message: 'inputs must not import a stage, a pipeline, main or post'
            }
          ]
        }
      ]
    }
  },
  {
    // Stages are the pipelines' steps: they never reach up into a pipeline or the entry points.
    files: ['src/stages/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/pipeline/**', '**/main.js', '**/post.js'],
              message: 'a stage must not import a pipeline, main or post'
            }
          ]
        }
      ]
    }
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  // Scripts run on Node.
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: globals.node } }
)
